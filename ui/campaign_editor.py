"""The campaign design form (活动设计): widgets for every part of a `CampaignDesign`, read
back into a design on every rerun so the budget and hints beside it are always current."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import pandas as pd
import streamlit as st

from core.campaigns.design import (
    COUPON_LABELS,
    FACE_VALUE_MEANING,
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
        rule = _rule(design, key, period)
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
        placeholder="请选择",
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


def _rule(design: CampaignDesign, key: str, period: tuple[date, date]) -> RightsDayRule:
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
            placeholder="请选择（可多选）",
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
    start, end = period
    span = max((end - start).days + 1, 0)
    choices = sorted(
        {*(start + timedelta(days=i) for i in range(min(span, 400))), *design.rule.dates}
    )
    dates = st.multiselect(
        "指定日期",
        choices,
        default=sorted(design.rule.dates),
        format_func=lambda d: f"{d.month}月{d.day}日（{WEEKDAY_NAMES[d.weekday()]}）",
        key=f"{key}_dates",
        placeholder="选择活动期内的日期（可输入搜索，如 12月8日）",
    )
    return RightsDayRule(kind=kind, dates=sorted(dates))


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


_KIND_HINTS = {
    CouponKind.FULL_REDUCTION: "消费满门槛金额后减免",
    CouponKind.INSTANT: "到店直接减免",
    CouponKind.DISCOUNT: "按折扣优惠，设单张最高优惠",
    CouponKind.ONE_CENT: "一分钱购买指定商品，邮政补贴差价",
    CouponKind.SHIPPING: "抵扣寄件运费",
}


def _slots(design: CampaignDesign, key: str) -> dict:
    """The coupons being edited, by a stable slot number: widgets are keyed by slot, so
    removing the second coupon does not hand its values to the third."""
    state_key = f"{key}_coupon_slots"
    if state_key not in st.session_state:
        st.session_state[state_key] = dict(enumerate(design.coupons))
    return st.session_state[state_key]


def _add_coupon(slots: dict) -> None:
    slots[max(slots, default=-1) + 1] = Coupon()


def _remove_coupon(slots: dict, slot: int) -> None:
    slots.pop(slot, None)


def _coupons(design: CampaignDesign, choices: EditorChoices, key: str) -> list[Coupon]:
    slots = _slots(design, key)
    st.caption(
        "每张券一栏，按类型填写金额；商户共同出资（邮政出资低于 100%）时须选择承兑商户，"
        "承兑商户须在「商户与目标」的参与商户之中。"
    )
    if not slots:
        st.info(
            "还没有权益券，点击下方「添加权益券」开始设置。", icon=":material/confirmation_number:"
        )
    coupons = []
    for number, (slot, coupon) in enumerate(list(slots.items()), start=1):
        with st.container(border=True):
            coupons.append(_coupon_form(number, slot, coupon, slots, choices, f"{key}_c{slot}"))
    st.button(
        "添加权益券",
        key=f"{key}_coupon_add",
        icon=":material/add:",
        on_click=_add_coupon,
        args=(slots,),
    )
    return coupons


def _coupon_form(
    number: int, slot: int, coupon: Coupon, slots: dict, choices: EditorChoices, key: str
) -> Coupon:
    head, remove = st.columns([5, 1], vertical_alignment="center")
    head.markdown(f"**第 {number} 张权益券**")
    remove.button(
        "删除此券",
        key=f"{key}_remove",
        icon=":material/delete:",
        on_click=_remove_coupon,
        args=(slots, slot),
    )
    name_col, kind_col = st.columns([2, 3])
    name = name_col.text_input(
        "券名称", value=coupon.name, max_chars=30, key=f"{key}_name", placeholder="例如：满30减10"
    )
    kind = (
        kind_col.segmented_control(
            "券类型",
            list(CouponKind),
            default=coupon.kind,
            format_func=COUPON_LABELS.get,
            key=f"{key}_kind",
        )
        or coupon.kind
    )
    kind_col.caption(_KIND_HINTS[kind])
    money = st.columns(3)
    threshold, discount = 0, 0
    if kind is CouponKind.FULL_REDUCTION:
        threshold = _yuan_input(money[0], "满（元）", coupon.threshold_fen, f"{key}_threshold")
    if kind is CouponKind.DISCOUNT:
        discount = money[0].number_input(
            "折扣（折）",
            min_value=0.0,
            max_value=9.9,
            value=coupon.discount_permille / 100,
            step=0.5,
            format="%.1f",
            key=f"{key}_discount",
        )
    face_col = money[1] if kind in (CouponKind.FULL_REDUCTION, CouponKind.DISCOUNT) else money[0]
    face = _yuan_input(
        face_col, f"{FACE_VALUE_MEANING[kind]}（元）", coupon.face_value_fen, f"{key}_face"
    )
    counts = st.columns(4)
    quantity = counts[0].number_input(
        "发放数量（张）", min_value=0, value=coupon.quantity, step=100, key=f"{key}_quantity"
    )
    limit = counts[1].number_input(
        "每人限领（张）",
        min_value=1,
        value=max(coupon.per_member_limit, 1),
        step=1,
        key=f"{key}_limit",
    )
    star = counts[2].selectbox(
        "最低会员星级",
        [1, 2, 3, 4, 5],
        index=min(max(coupon.min_star, 1), 5) - 1,
        format_func=lambda s: f"{s} 星及以上",
        key=f"{key}_star",
        placeholder="请选择",
    )
    share = counts[3].number_input(
        "邮政出资（%）",
        min_value=0,
        max_value=100,
        value=coupon.post_share_pct,
        step=10,
        key=f"{key}_share",
    )
    merchant_ids: list[int] = []
    if share < 100:
        names = dict(choices.merchants)
        merchant_ids = st.multiselect(
            "承兑商户（共同出资）",
            list(names),
            default=[m for m in coupon.merchant_ids if m in names],
            format_func=names.get,
            key=f"{key}_merchants",
            placeholder="选择承兑商户（可搜索）",
        )
    return Coupon(
        name=name.strip(),
        kind=kind,
        face_value_fen=face,
        threshold_fen=threshold,
        discount_permille=round(discount * 100),  # 8.8 折 → 880‰
        quantity=int(quantity),
        per_member_limit=int(limit),
        min_star=int(star),
        post_share_pct=int(share),
        merchant_ids=merchant_ids,
    )


def _yuan_input(container, label: str, value_fen: int, key: str) -> int:
    amount = container.number_input(
        label, min_value=0.0, value=value_fen / 100, step=1.0, format="%.2f", key=key
    )
    return fen(amount)


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
