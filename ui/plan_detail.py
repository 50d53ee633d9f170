"""One plan in full (tabs): used by 活动方案 and 方案审核, so both show the same facts."""

from __future__ import annotations

import streamlit as st

from core.campaigns.plans import EDITABLE_STATES, CampaignDetail
from core.campaigns.review import compare_versions
from core.platform.errors import DomainError
from core.platform.permissions import Actor
from ui import plan_view, widgets


def show(detail: CampaignDetail, actor: Actor, *, key: str) -> None:
    overview, calendar, coupons, money, hints, history, versions, files = st.tabs(
        [
            "概要",
            "权益日",
            "权益券",
            "预算",
            f"合规提示（{len(detail.hits)}）",
            "审核记录",
            "版本对比",
            f"附件（{len(detail.attachments)}）",
        ]
    )
    with overview:
        plan_view.summary(detail)
    with calendar:
        plan_view.calendar(detail.design)
    with coupons:
        plan_view.coupons_table(detail.design, detail.names)
    with money:
        plan_view.budget_panel(detail.budget, detail.design)
    with hints:
        plan_view.compliance_panel(detail.hits)
    with history:
        plan_view.history(detail)
    with versions:
        _versions(detail, actor, key)
    with files:
        if not detail.attachments:
            widgets.empty_state("没有附件。")
        for item in detail.attachments:
            plan_view.attachment_button(st, item, actor, f"{key}_att_{item.id}")


def _versions(detail: CampaignDetail, actor: Actor, key: str) -> None:
    choices = detail.versions + ([None] if detail.row.state in EDITABLE_STATES else [])
    if len(choices) < 2:
        widgets.empty_state("只有一个版本，暂无可对比的内容。退回后重新提交会产生新版本。")
        return

    def label(v: int | None) -> str:
        return "当前修改（未提交）" if v is None else f"第 {v} 版"

    left, right = st.columns(2)
    a = left.selectbox(
        "左侧",
        choices,
        index=len(choices) - 2,
        format_func=label,
        key=f"{key}_va",
        placeholder="请选择",
    )
    b = right.selectbox(
        "右侧",
        choices,
        index=len(choices) - 1,
        format_func=label,
        key=f"{key}_vb",
        placeholder="请选择",
    )
    try:
        with widgets.db() as session:
            rows = compare_versions(
                session,
                actor=actor,
                campaign_id=detail.row.id,
                left=a,
                right=b,
            )
    except DomainError as exc:
        widgets.show_error(exc)
        return
    plan_view.diff_table(rows, label(a), label(b))
