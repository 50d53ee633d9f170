"""The campaign design form (活动设计): widgets for every part of a `CampaignDesign`, read
back into a design on every rerun so the budget and hints beside it are always current."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

import pandas as pd
import streamlit as st

from core.campaigns.design import (
    COUPON_LABELS,
    WEEKDAY_NAMES,
    CampaignDesign,
    Coupon,
    CouponKind,
    RightsDayRule,
    RuleKind,
    StarRights,
    TargetMode,
)
from core.campaigns.plans import EditorChoices
from db.models import CAMPAIGN_KIND_LABELS, CampaignKind
from ui.text import md

COUPON_COLUMNS = [
    "名称",
    "类型",
    "面值/减免(元)",
    "满减门槛(元)",
    "折扣(折)",
    "数量",
    "每人限领",
    "最低星级",
    "邮政出资%",
    "承兑商户",
]


def fen(value: object) -> int:
    """Yuan typed in a form as exact fen (blank or invalid → 0; validation reports it)."""
    try:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return 0
        return int((Decimal(str(value)) * 100).quantize(Decimal(1)))
    except (InvalidOperation, ValueError):
        return 0


def whole(value: object) -> int:
    try:
        return 0 if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return 0


def edit(design: CampaignDesign, choices: EditorChoices, *, key: str) -> CampaignDesign:
    """Render the form pre-filled with `design`; return what the widgets now hold."""
    basics, rule_tab, stars_tab, coupons_tab, goals_tab, notes_tab = st.tabs(
        ["基本信息", "权益日规则", "星级权益", "权益券", "商户与目标", "方案说明"]
    )
    with basics:
        name, kind, period, targets = _basics(design, choices, key)
    with rule_tab:
        rule = _rule(design, key)
    with stars_tab:
        stars = _stars(design, key)
    with coupons_tab:
        coupons = _coupons(design, choices, key)
    with goals_tab:
        merchants, goals = _goals(design, choices, key)
    with notes_tab:
        notes = st.text_area(
            "方案说明",
            value=design.notes,
            height=200,
            key=f"{key}_notes",
            max_chars=5000,
            placeholder="活动背景、宣传渠道、执行要求等",
        )
    start, end = period
    return CampaignDesign(
        name=name,
        kind=kind,
        city_id=choices.city_id,
        start_date=start,
        end_date=end,
        target_mode=targets[0],
        target_county_ids=targets[1],
        target_outlet_ids=targets[2],
        rule=rule,
        star_rights=stars,
        coupons=coupons,
        merchant_ids=merchants,
        kpi_new_friends=goals[0],
        kpi_conversions=goals[1],
        kpi_deposits_fen=goals[2],
        expected_redemption_pct=goals[3],
        notes=notes,
    )


def _basics(design: CampaignDesign, choices: EditorChoices, key: str) -> tuple:
    name = st.text_input(
        "活动名称",
        value=design.name,
        max_chars=60,
        key=f"{key}_name",
        placeholder="例如：12月逢8会员权益日",
    )
    left, right = st.columns(2)
    kinds = list(CampaignKind)
    kind = left.selectbox(
        "活动类型",
        kinds,
        index=kinds.index(design.kind),
        format_func=lambda k: CAMPAIGN_KIND_LABELS[k],
        key=f"{key}_kind",
    )
    picked = right.date_input(
        "活动期", value=(design.start_date, design.end_date), key=f"{key}_period"
    )
    period = (
        (picked[0], picked[-1])
        if isinstance(picked, tuple) and picked
        else (design.start_date, design.end_date)
    )
    modes = list(TargetMode)
    mode = st.radio(
        "参与网点",
        modes,
        index=modes.index(design.target_mode),
        format_func=lambda m: m.label,
        horizontal=True,
        key=f"{key}_mode",
    )
    counties, outlets = [], []
    county_names, outlet_names = dict(choices.counties), dict(choices.outlets)
    if mode is TargetMode.COUNTIES:
        counties = st.multiselect(
            "参与区县",
            list(county_names),
            default=[c for c in design.target_county_ids if c in county_names],
            format_func=county_names.get,
            key=f"{key}_counties",
            placeholder="选择区县",
        )
    elif mode is TargetMode.OUTLETS:
        outlets = st.multiselect(
            "参与网点",
            list(outlet_names),
            default=[o for o in design.target_outlet_ids if o in outlet_names],
            format_func=outlet_names.get,
            key=f"{key}_outlets",
            placeholder="选择网点（可搜索）",
        )
    else:
        st.caption(f"{md(choices.city_name)}全部 {len(choices.outlets)} 个网点参与。")
    return name, kind, period, (mode, counties, outlets)


def _rule(design: CampaignDesign, key: str) -> RightsDayRule:
    kinds = list(RuleKind)
    kind = st.radio(
        "权益日规则",
        kinds,
        index=kinds.index(design.rule.kind),
        format_func=lambda k: k.label,
        horizontal=True,
        key=f"{key}_rule",
    )
    if kind is RuleKind.MONTH_DAYS:
        days = st.multiselect(
            "每月哪几天",
            list(range(1, 32)),
            default=design.rule.month_days or [8, 18, 28],
            format_func=lambda d: f"{d} 日",
            key=f"{key}_month_days",
        )
        return RightsDayRule(kind=kind, month_days=sorted(days))
    if kind is RuleKind.WEEKDAYS:
        days = st.multiselect(
            "每周哪几天",
            list(range(7)),
            default=design.rule.weekdays,
            format_func=lambda d: WEEKDAY_NAMES[d],
            key=f"{key}_weekdays",
            placeholder="选择星期",
        )
        return RightsDayRule(kind=kind, weekdays=sorted(days))
    frame = pd.DataFrame({"日期": pd.Series(design.rule.dates or [], dtype="object")})
    edited = st.data_editor(
        frame,
        num_rows="dynamic",
        key=f"{key}_dates",
        hide_index=True,
        column_config={"日期": st.column_config.DateColumn("日期", format="YYYY-MM-DD")},
    )
    dates = sorted({d for d in edited["日期"].tolist() if isinstance(d, date)})
    return RightsDayRule(kind=kind, dates=dates)


def _stars(design: CampaignDesign, key: str) -> list[StarRights]:
    st.caption("每个星级的会员可享受的权益，多项用「、」分隔；高星级会员同时享有低星级权益。")
    current = {s.level: s.rights for s in design.star_rights}
    stars = []
    for level in range(1, 6):
        text = st.text_input(
            f"{'★' * level}（{level} 星）",
            value="、".join(current.get(level, [])),
            key=f"{key}_star{level}",
        )
        rights = [
            r.strip() for r in text.replace(",", "、").replace("，", "、").split("、") if r.strip()
        ]
        stars.append(StarRights(level=level, rights=rights))
    return stars


def _coupons(design: CampaignDesign, choices: EditorChoices, key: str) -> list[Coupon]:
    merchant_names = dict(choices.merchants)
    by_name = {n: i for i, n in choices.merchants}
    labels = {v: k for k, v in COUPON_LABELS.items()}
    rows = [
        {
            "名称": c.name,
            "类型": COUPON_LABELS[c.kind],
            "面值/减免(元)": c.face_value_fen / 100,
            "满减门槛(元)": c.threshold_fen / 100,
            "折扣(折)": c.discount_permille / 100,
            "数量": c.quantity,
            "每人限领": c.per_member_limit,
            "最低星级": c.min_star,
            "邮政出资%": c.post_share_pct,
            "承兑商户": [merchant_names[m] for m in c.merchant_ids if m in merchant_names],
        }
        for c in design.coupons
    ]
    frame = pd.DataFrame(rows, columns=COUPON_COLUMNS)
    st.caption(
        "满减券填「满减门槛」；折扣券填「折扣」，「面值」为单张最高优惠。商户共同出资时（邮政出资 < 100%）须选承兑商户。"
    )
    edited = st.data_editor(
        frame,
        num_rows="dynamic",
        hide_index=True,
        key=f"{key}_coupons",
        column_config={
            "名称": st.column_config.TextColumn(required=True, max_chars=30),
            "类型": st.column_config.SelectboxColumn(
                options=list(labels), required=True, default="满减券"
            ),
            "面值/减免(元)": st.column_config.NumberColumn(min_value=0, step=0.01, format="%.2f"),
            "满减门槛(元)": st.column_config.NumberColumn(
                min_value=0, step=0.01, format="%.2f", default=0
            ),
            "折扣(折)": st.column_config.NumberColumn(
                min_value=0, max_value=9.9, step=0.1, format="%.1f", default=0
            ),
            "数量": st.column_config.NumberColumn(min_value=0, step=1, format="%d"),
            "每人限领": st.column_config.NumberColumn(min_value=1, step=1, format="%d", default=1),
            "最低星级": st.column_config.NumberColumn(
                min_value=1, max_value=5, step=1, format="%d", default=1
            ),
            "邮政出资%": st.column_config.NumberColumn(
                min_value=0, max_value=100, step=1, format="%d", default=100
            ),
            "承兑商户": st.column_config.MultiselectColumn(options=list(by_name), width="large"),
        },
    )
    coupons = []
    for row in edited.to_dict("records"):
        if not str(row.get("名称") or "").strip() and not whole(row.get("数量")):
            continue  # an empty row the user just added
        coupons.append(
            Coupon(
                name=str(row.get("名称") or "").strip(),
                kind=labels.get(row.get("类型"), CouponKind.FULL_REDUCTION),
                face_value_fen=fen(row.get("面值/减免(元)")),
                threshold_fen=fen(row.get("满减门槛(元)")),
                discount_permille=fen(row.get("折扣(折)")),  # 8.8 折 → 880‰
                quantity=whole(row.get("数量")),
                per_member_limit=whole(row.get("每人限领")) or 1,
                min_star=whole(row.get("最低星级")) or 1,
                post_share_pct=whole(row.get("邮政出资%"))
                if row.get("邮政出资%") is not None
                else 100,
                merchant_ids=[by_name[n] for n in (row.get("承兑商户") or []) if n in by_name],
            )
        )
    return coupons


def _goals(
    design: CampaignDesign, choices: EditorChoices, key: str
) -> tuple[list[int], tuple[int, int, int, int]]:
    names = dict(choices.merchants)
    if not names:
        st.info("本市还没有联盟商户，可先在「联盟商户」中添加。", icon=":material/storefront:")
    merchants = st.multiselect(
        "参与商户",
        list(names),
        default=[m for m in design.merchant_ids if m in names],
        format_func=names.get,
        key=f"{key}_merchants",
        placeholder="选择联盟商户（可搜索）",
    )
    a, b, c, d = st.columns(4)
    friends = a.number_input(
        "目标·新增好友",
        min_value=0,
        value=design.kpi_new_friends,
        step=100,
        key=f"{key}_kpi_friends",
    )
    conversions = b.number_input(
        "目标·转化客户", min_value=0, value=design.kpi_conversions, step=10, key=f"{key}_kpi_conv"
    )
    deposits = c.number_input(
        "目标·新增存款(万元)",
        min_value=0.0,
        value=design.kpi_deposits_fen / 1_000_000,
        step=10.0,
        format="%.2f",
        key=f"{key}_kpi_dep",
    )
    rate = d.number_input(
        "预计核销率(%)",
        min_value=1,
        max_value=100,
        value=design.expected_redemption_pct,
        step=5,
        key=f"{key}_rate",
    )
    return merchants, (
        int(friends),
        int(conversions),
        fen(Decimal(str(deposits)) * 10_000),
        int(rate),
    )
