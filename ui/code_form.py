"""The form of one channel code (渠道活码): staff pool, rule, caps, window, tags and the
welcome message, read into a `CodeInput` for core.channels.codes.create_code."""

from __future__ import annotations

import streamlit as st

from core.campaigns.design import WEEKDAY_NAMES
from core.channels.assignment import build_slots
from core.channels.codes import DEFAULT_WELCOME, WELCOME_PLACEHOLDERS, CodeChoices, CodeInput
from db.models import AssignmentRule, ChannelType


def code_form(choices: CodeChoices) -> tuple[CodeInput, list[str]]:
    """The code as the form holds it, and what is wrong with its time slots (if anything)."""
    outlet_names = dict(choices.outlets)
    a, b = st.columns(2)
    name = a.text_input("活码名称", key="code_name", placeholder="例如：星沙支局·柜台")
    channel = b.selectbox(
        "渠道", list(ChannelType), format_func=lambda t: t.label, key="code_channel"
    )
    outlet_id = a.selectbox(
        "网点", list(outlet_names), format_func=outlet_names.get, key="code_outlet"
    )
    rule = b.selectbox(
        "分配规则", list(AssignmentRule), format_func=lambda r: r.label, key="code_rule"
    )
    people = dict(choices.staff.get(outlet_id, []))
    staff_ids = st.multiselect(
        "接待员工（按顺序）",
        list(people),
        format_func=people.get,
        key=f"code_staff_{outlet_id}",
        placeholder="选择员工",
    )
    fallback = st.multiselect(
        "备用员工（都满额或不在班时接待）",
        [p for p in people if p not in staff_ids],
        format_func=people.get,
        key=f"code_fb_{outlet_id}",
        placeholder="可选",
    )
    c, d, e = st.columns(3)
    cap = c.number_input("每人每日上限（0 为不限）", min_value=0, value=0, key="code_cap")
    max_adds = d.number_input("添加上限（0 为不限）", min_value=0, value=0, key="code_max")
    until = e.date_input("有效期至", value=None, key="code_until")
    tags = st.text_input("来源标签（用「、」分隔）", value=f"{channel.label}", key="code_tags")
    welcome = st.text_area(
        "欢迎语",
        value=DEFAULT_WELCOME,
        key="code_welcome",
        help="可用占位符：" + "、".join(WELCOME_PLACEHOLDERS),
    )
    campaigns, merchants = dict(choices.campaigns), dict(choices.merchants)
    f, g = st.columns(2)
    campaign = f.selectbox(
        "所属活动（可选）",
        [None, *campaigns],
        format_func=lambda c: "—" if c is None else campaigns[c],
        key="code_campaign",
    )
    merchant = g.selectbox(
        "所在商户（商户门店码）",
        [None, *merchants],
        format_func=lambda m: "—" if m is None else merchants[m],
        key="code_merchant",
    )
    slots, problems = _slots()
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
        active_until=until,
        tags=tuple(t.strip() for t in tags.replace(",", "、").split("、") if t.strip()),
        welcome_message=welcome,
    ), problems


def _slots() -> tuple[dict | None, list[str]]:
    with st.expander("接待时段（可选：时段外由备用员工接待）"):
        days = st.multiselect(
            "每周接待日",
            list(range(7)),
            format_func=lambda d: WEEKDAY_NAMES[d],
            key="code_days",
            placeholder="不设则全天接待",
        )
        a, b = st.columns(2)
        start = a.text_input("开始", value="09:00", key="code_from")
        end = b.text_input("结束", value="17:30", key="code_to")
        overrides = st.text_area(
            "特殊日期（每行一天）",
            key="code_overrides",
            placeholder="2026-12-08 08:00-20:00\n2026-10-01 休息",
        )
    return build_slots(days, start, end, overrides)
