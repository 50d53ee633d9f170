"""Showing a plan (活动方案): calendar, coupons, budget, compliance hints, history,
attachments and version comparison. Used by the designer, the plans list and the approvals."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.campaigns.attachments import add_attachment, attachment_content, remove_attachment
from core.campaigns.budget import Budget
from core.campaigns.compliance import ComplianceHit
from core.campaigns.design import WEEKDAY_NAMES, CampaignDesign, DesignNames, month_grids
from core.campaigns.plans import AttachmentRead, CampaignDetail
from core.campaigns.review import DiffRow
from core.campaigns.states import ACTION_LABELS, PlanAction
from core.platform.clock import format_timestamp
from core.platform.errors import DomainError
from core.platform.formatting import format_yuan, money_formatter
from core.platform.permissions import Actor
from db.models import PLAN_STATE_LABELS, PlanState
from ui import widgets
from ui.text import md

EVENT_LABELS = {"create": "创建", "save": "保存", **{a.value: a.label for a in PlanAction}}


def state_badge(state: PlanState, stage: int | None = None, stages: int | None = None) -> str:
    colour = {
        PlanState.DRAFT: "gray",
        PlanState.SUBMITTED: "blue",
        PlanState.IN_REVIEW: "blue",
        PlanState.APPROVED: "green",
        PlanState.RETURNED: "orange",
        PlanState.REJECTED: "red",
        PlanState.SCHEDULED: "violet",
        PlanState.RUNNING: "green",
        PlanState.ENDED: "gray",
    }[state]
    text = state.label
    if stage and state in (PlanState.SUBMITTED, PlanState.IN_REVIEW):
        text += f" · 第 {stage}{f'/{stages}' if stages else ''} 环节"
    return f":{colour}-badge[{text}]"


def calendar(design: CampaignDesign) -> None:
    """Month grids of the period with the rights days marked (权益日日历)."""
    days = set(design.rights_days())
    st.markdown(f"**权益日：{design.rule.describe()}**，活动期内共 {len(days)} 天")
    cells = []
    for year, month, weeks in month_grids(sorted(days), design.start_date, design.end_date):
        head = "".join(f"<th>{w}</th>" for w in WEEKDAY_NAMES)
        body = "".join(
            "<tr>" + "".join(_cell(d, days, design) for d in week) + "</tr>" for week in weeks
        )
        cells.append(
            f'<table class="rds-cal"><caption>{year} 年 {month} 月</caption><tr>{head}</tr>{body}</table>'
        )
    st.html(
        "<style>.rds-cals{display:flex;flex-wrap:wrap;gap:1rem}.rds-cal{border-collapse:collapse;font-size:.85rem}"
        ".rds-cal caption{font-weight:600;padding:.25rem;color:#1F2A24}.rds-cal th{color:#5b6b62;font-weight:400;padding:.2rem .45rem}"
        ".rds-cal td{width:2rem;height:1.8rem;text-align:center;border-radius:6px}.rds-cal td.out{color:#c9d3cd}"
        ".rds-cal td.on{background:#007A3D;color:#fff;font-weight:700}</style>"
        f'<div class="rds-cals">{"".join(cells)}</div>'
    )


def _cell(day: date | None, marked: set[date], design: CampaignDesign) -> str:
    if day is None:
        return "<td></td>"
    css = (
        "on"
        if day in marked
        else ("out" if not design.start_date <= day <= design.end_date else "")
    )
    return f'<td class="{css}">{day.day}</td>'


def budget_panel(budget: Budget, design: CampaignDesign) -> None:
    money = money_formatter(
        budget.full_fen,
        budget.expected_fen,
        budget.post_full_fen,
        budget.post_expected_fen,
        budget.merchant_expected_fen,
    )
    a, b, c = st.columns(3)
    a.metric("全部核销面值", money(budget.full_fen), help="每张券都被核销时的总面值")
    b.metric(f"预计核销（{design.expected_redemption_pct}%）", money(budget.expected_fen))
    c.metric(
        "邮政预计出资",
        money(budget.post_expected_fen),
        help=f"全部核销时 {money(budget.post_full_fen)}",
    )
    d, e, f = st.columns(3)
    d.metric("商户预计出资", money(budget.merchant_expected_fen))
    unit = "—" if budget.per_conversion_fen is None else format_yuan(budget.per_conversion_fen)
    e.metric("每个目标转化成本", unit, help="邮政预计出资 ÷ 目标转化客户")
    w = "—" if budget.per_wan_deposits_fen is None else format_yuan(budget.per_wan_deposits_fen)
    f.metric("每万元目标存款成本", w, help="邮政预计出资 ÷ 目标新增存款（万元）")
    if budget.remaining_fen is not None and budget.cap_fen is not None:
        cap = money_formatter(budget.cap_fen)
        st.caption(
            f"本市 {design.start_date.year} 年预算 {cap(budget.cap_fen)}：其他已批方案预计占用 "
            f"{cap(budget.committed_fen)}，本方案预计 {cap(budget.post_expected_fen)}，"
            f"剩余 {cap(budget.remaining_after_fen)}。"
        )
    for warning in budget.warnings():
        (st.error if budget.over_expected else st.warning)(
            warning, icon=":material/account_balance_wallet:"
        )


def compliance_panel(hits: list[ComplianceHit]) -> None:
    if not hits:
        st.success("合规检查：未发现禁用或慎用的宣传用语。", icon=":material/verified:")
        return
    st.warning(
        f"合规提示：发现 {len(hits)} 处需要注意的宣传用语（不影响提交，审核员会看到）。",
        icon=":material/gavel:",
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "级别": h.severity_label,
                    "用语": h.term,
                    "位置": h.where,
                    "原文": h.excerpt,
                    "建议": h.suggestion,
                }
                for h in hits
            ]
        ),
        hide_index=True,
    )


def coupons_table(design: CampaignDesign, names: DesignNames) -> None:
    if not design.coupons:
        st.info("没有设置权益券。")
        return
    rows = [
        {
            "名称": c.name,
            "类型": c.kind.label,
            "规则": c.describe(),
            "数量(张)": c.quantity,
            "每人限领(张)": c.per_member_limit,
            "最低星级": f"{c.min_star} 星",
            "出资": f"邮政 {c.post_share_pct}% / 商户 {100 - c.post_share_pct}%",
            "承兑商户": names.merchant_list(c.merchant_ids) or "—",
        }
        for c in design.coupons
    ]
    frame = pd.DataFrame(rows)
    st.dataframe(frame, hide_index=True, column_config=widgets.number_columns(frame))


def summary(detail: CampaignDetail) -> None:
    design, names = detail.design, detail.names
    days = (design.end_date - design.start_date).days + 1
    st.markdown(f"**活动期**：{design.start_date} 至 {design.end_date}（{days} 天）")
    b, c, d = st.columns(3)
    b.metric("目标·新增好友", f"{design.kpi_new_friends:,} 人")
    c.metric("目标·转化客户", f"{design.kpi_conversions:,} 人")
    d.metric("目标·新增存款", format_yuan(design.kpi_deposits_fen))
    targets = design.target_mode.label
    if design.target_county_ids:
        targets += "：" + md(names.unit_list(design.target_county_ids))
    if design.target_outlet_ids:
        targets += "：" + md(names.unit_list(design.target_outlet_ids))
    merchants = md(names.merchant_list(design.merchant_ids)) or "—"
    st.markdown(f"**参与网点**：{targets}  \n**参与商户**：{merchants}")
    stars = "；".join(
        f"{s.level}星：{md('、'.join(s.rights))}" for s in design.star_rights if s.rights
    )
    st.markdown(f"**星级权益**：{stars or '—'}")
    if design.notes:
        with st.expander("方案说明"):
            st.text(design.notes)


def history(detail: CampaignDetail) -> None:
    rows = [
        {
            "时间": format_timestamp(e.at),
            "操作人": e.actor_name,
            "操作": EVENT_LABELS.get(e.action, e.action),
            "状态": f"{_state(e.from_state)} → {_state(e.to_state)}"
            if e.from_state != e.to_state
            else _state(e.to_state),
            "环节": f"第 {e.stage} 环节" if e.stage else "",
            "版本": f"v{e.version}" if e.version else "",
            "意见": e.comment,
        }
        for e in detail.events
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={"意见": st.column_config.TextColumn(width="large")},
    )


def _state(value: str | None) -> str:
    return PLAN_STATE_LABELS[PlanState(value)] if value else ""


def latest_comment(detail: CampaignDetail) -> str:
    """The reviewers' latest comment in the current round: a (re)submission starts a new
    round, so a return comment that was answered by resubmitting is no longer shown here
    (it stays in the 审核记录)."""
    for event in reversed(detail.events):
        if event.action == PlanAction.SUBMIT:
            return ""
        if event.comment and event.action in (
            PlanAction.RETURN,
            PlanAction.REJECT,
            PlanAction.APPROVE,
            PlanAction.APPROVE_FINAL,
        ):
            return (
                f"{ACTION_LABELS[PlanAction(event.action)]}（{event.actor_name}）：{event.comment}"
            )
    return ""


def diff_table(rows: list[DiffRow], left: str, right: str) -> None:
    """Changed fields first (highlighted), then the unchanged ones folded away."""
    changed = [r for r in rows if r.changed]
    same = [r for r in rows if not r.changed]
    if not changed:
        st.caption("两个版本内容相同。")
    else:
        st.caption(f"共 {len(changed)} 处不同")
        frame = pd.DataFrame([{"字段": r.field, left: r.left, right: r.right} for r in changed])
        st.dataframe(
            frame.style.apply(lambda row: ["background-color: #FFF4CC"] * len(row), axis=1),
            hide_index=True,
            height="content" if len(changed) <= 12 else 460,
        )
    if same:
        with st.expander(f"未改动的 {len(same)} 项"):
            st.dataframe(
                pd.DataFrame([{"字段": r.field, "内容": r.left} for r in same]),
                hide_index=True,
            )


def attachment_button(container, item: AttachmentRead, actor: Actor, key: str) -> None:
    """A download button for one attachment; its bytes (up to 10 MB) are read only on click,
    not on every rerun of the page."""

    def content() -> bytes:
        with widgets.db() as session:
            return attachment_content(session, actor=actor, attachment_id=item.id)[2]

    container.download_button(
        f"{md(item.filename)}（{item.size // 1024} KB）",
        content,
        file_name=item.filename,
        mime=item.content_type,
        key=key,
        on_click="ignore",
        icon=":material/download:",
    )


def attachments_editor(actor: Actor, detail: CampaignDetail, *, key: str) -> None:
    """附件 of a saved draft: download or delete each, upload another (one core call each)."""
    with st.expander(f"附件（{len(detail.attachments)}）", icon=":material/attach_file:"):
        for item in detail.attachments:
            left, right = st.columns([4, 1])
            attachment_button(left, item, actor, f"att_dl_{item.id}")
            if right.button("删除", key=f"att_rm_{item.id}"):
                with widgets.db() as session:
                    remove_attachment(session, actor=actor, attachment_id=item.id)
                st.rerun()
        upload = st.file_uploader(
            "上传附件（PDF、PNG、JPEG，单个不超过 10 MB）",
            type=["pdf", "png", "jpg", "jpeg"],
            key=key,
        )
        if upload is not None and st.button("上传", key="att_upload"):
            try:
                with widgets.db() as session:
                    add_attachment(
                        session,
                        actor=actor,
                        campaign_id=detail.row.id,
                        filename=upload.name,
                        data=upload.getvalue(),
                    )
                st.toast("附件已上传", icon=":material/check_circle:")
                st.rerun()
            except DomainError as exc:
                widgets.show_error(exc)
