"""The form of one channel code (渠道活码): staff pool, rule, caps, window, tags and the
welcome message, read into a `CodeInput` for core.channels.codes.create_code (new code)
or core.channels.code_edits.edit_code (prefilled with the stored code)."""

from __future__ import annotations

import streamlit as st

from core.campaigns.design import WEEKDAY_NAMES
from core.channels.assignment import build_slots
from core.channels.codes import DEFAULT_WELCOME, WELCOME_PLACEHOLDERS, CodeChoices, CodeInput
from db.models import AssignmentRule, ChannelType


def code_form(
    choices: CodeChoices, *, initial: CodeInput | None = None, key: str = "code"
) -> tuple[CodeInput, list[str]]:
    """The code as the form holds it, and what is wrong with its time slots (if anything).

    With `initial` (an edit) the outlet is fixed and the staff pool is left out: it is
    changed through re-staffing."""
    outlet_names = dict(choices.outlets)
    a, b = st.columns(2)
    name = a.text_input(
        "活码名称",
        value=initial.name if initial else "",
        key=f"{key}_name",
        placeholder="例如：星沙支局·柜台",
    )
    channels, rules = list(ChannelType), list(AssignmentRule)
    channel = b.selectbox(
        "渠道",
        channels,
        index=channels.index(initial.channel_type) if initial else 0,
        format_func=lambda t: t.label,
        key=f"{key}_channel",
        placeholder="请选择",
    )
    outlets = [initial.outlet_id] if initial else list(outlet_names)
    outlet_id = a.selectbox(
        "网点",
        outlets,
        format_func=lambda o: outlet_names.get(o, "—"),
        key=f"{key}_outlet",
        disabled=initial is not None,
        placeholder="请选择",
    )
    rule = b.selectbox(
        "分配规则",
        rules,
        index=rules.index(initial.rule) if initial else 0,
        format_func=lambda r: r.label,
        key=f"{key}_rule",
        placeholder="请选择",
    )
    staff_ids: tuple[int, ...] = initial.staff_ids if initial else ()
    fallback: tuple[int, ...] = initial.fallback_staff_ids if initial else ()
    if initial is None:
        staff_ids, fallback = staff_pool(choices, outlet_id, key=key)
    c, d = st.columns(2)
    cap = c.number_input(
        "每人每日上限（0 为不限）",
        min_value=0,
        value=(initial.daily_cap or 0) if initial else 0,
        key=f"{key}_cap",
    )
    max_adds = d.number_input(
        "添加上限（0 为不限）",
        min_value=0,
        value=(initial.max_adds or 0) if initial else 0,
        key=f"{key}_max",
    )
    e, f = st.columns(2)
    since = e.date_input(
        "开始日期（不填为立即生效）",
        value=initial.active_from if initial else None,
        key=f"{key}_from_date",
    )
    until = f.date_input(
        "有效期至（不填为长期）",
        value=initial.active_until if initial else None,
        key=f"{key}_until",
    )
    tags = st.text_input(
        "来源标签（用「、」分隔）",
        value="、".join(initial.tags) if initial else f"{channel.label}",
        key=f"{key}_tags",
    )
    welcome = st.text_area(
        "欢迎语",
        value=initial.welcome_message if initial else DEFAULT_WELCOME,
        key=f"{key}_welcome",
        help="可用占位符：" + "、".join(WELCOME_PLACEHOLDERS),
    )
    campaign, merchant = _links(choices, initial, key)
    slots, problems = _slots(key, initial.slots if initial else None)
    return CodeInput(
        campaign_id=campaign,
        merchant_id=merchant,
        slots=slots,
        name=name,
        channel_type=channel,
        outlet_id=outlet_id,
        staff_ids=tuple(staff_ids),
        fallback_staff_ids=tuple(fallback),
        rule=rule,
        daily_cap=cap or None,
        max_adds=max_adds or None,
        active_from=since,
        active_until=until,
        tags=tuple(t.strip() for t in tags.replace(",", "、").split("、") if t.strip()),
        welcome_message=welcome,
    ), problems


def staff_pool(
    choices: CodeChoices,
    outlet_id: int,
    *,
    key: str,
    initial: tuple[tuple[int, ...], tuple[int, ...]] = ((), ()),
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Primary staff (in order) and fallback staff of one outlet's active staff."""
    people = dict(choices.staff.get(outlet_id, []))
    staff_ids = st.multiselect(
        "接待员工（按顺序）",
        list(people),
        default=[i for i in initial[0] if i in people],
        format_func=people.get,
        key=f"{key}_staff_{outlet_id}",
        placeholder="选择员工",
    )
    fallback = st.multiselect(
        "备用员工（都满额或不在班时接待）",
        [p for p in people if p not in staff_ids],
        default=[i for i in initial[1] if i in people and i not in staff_ids],
        format_func=people.get,
        key=f"{key}_fb_{outlet_id}",
        placeholder="可选",
    )
    return tuple(staff_ids), tuple(fallback)


def _links(
    choices: CodeChoices, initial: CodeInput | None, key: str
) -> tuple[int | None, int | None]:
    campaigns, merchants = dict(choices.campaigns), dict(choices.merchants)
    campaign_options = [None, *campaigns]
    merchant_options = [None, *merchants]
    # A code may carry a campaign that is no longer bindable (it ended): keep it selectable.
    if initial and initial.campaign_id and initial.campaign_id not in campaigns:
        campaigns[initial.campaign_id] = f"活动 {initial.campaign_id}（已结束）"
        campaign_options.append(initial.campaign_id)
    if initial and initial.merchant_id and initial.merchant_id not in merchants:
        merchants[initial.merchant_id] = f"商户 {initial.merchant_id}"
        merchant_options.append(initial.merchant_id)
    f, g = st.columns(2)
    campaign = f.selectbox(
        "所属活动（可选）",
        campaign_options,
        index=campaign_options.index(initial.campaign_id) if initial else 0,
        format_func=lambda c: "—" if c is None else campaigns[c],
        key=f"{key}_campaign",
        placeholder="请选择",
    )
    merchant = g.selectbox(
        "所在商户（商户门店码）",
        merchant_options,
        index=merchant_options.index(initial.merchant_id) if initial else 0,
        format_func=lambda m: "—" if m is None else merchants[m],
        key=f"{key}_merchant",
        placeholder="请选择",
    )
    return campaign, merchant


def _slots(key: str, initial: dict | None) -> tuple[dict | None, list[str]]:
    weekly = (initial or {}).get("weekly") or {}
    first = next(iter(weekly.values()), [["09:00", "17:30"]]) or [["09:00", "17:30"]]
    overrides = (initial or {}).get("overrides") or {}
    override_text = "\n".join(
        f"{day} " + (" ".join(f"{a}-{b}" for a, b in spans) if spans else "休息")
        for day, spans in sorted(overrides.items())
    )
    with st.expander("接待时段（可选：时段外由备用员工接待）"):
        days = st.multiselect(
            "每周接待日",
            list(range(7)),
            default=sorted(int(d) for d in weekly),
            format_func=lambda d: WEEKDAY_NAMES[d],
            key=f"{key}_days",
            placeholder="不设则全天接待",
        )
        a, b = st.columns(2)
        start = a.text_input("开始", value=first[0][0], key=f"{key}_from")
        end = b.text_input("结束", value=first[0][1], key=f"{key}_to")
        overrides_in = st.text_area(
            "特殊日期（每行一天）",
            value=override_text,
            key=f"{key}_overrides",
            placeholder="2026-12-08 08:00-20:00\n2026-10-01 休息",
        )
    return build_slots(days, start, end, overrides_in)
