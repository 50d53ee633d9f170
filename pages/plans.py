"""活动方案: plans with their state, stage, reviewer comments and what to do next; a
planner withdraws or reworks, an admin moves approved campaigns along their dates."""

import pandas as pd
import streamlit as st

from core.campaigns.approvals import advance_campaign, withdraw_plan
from core.campaigns.plans import CampaignFilter, campaign_detail, list_campaigns
from core.campaigns.stages import stages
from core.campaigns.states import (
    AWAITING_REVIEW,
    DATE_STEPS,
    PlanAction,
    available_actions,
    due_action,
)
from core.platform.clock import format_timestamp, shanghai_today
from core.platform.errors import DomainError
from core.platform.org import cities
from core.platform.permissions import Action, allowed
from db.models import CAMPAIGN_KIND_LABELS, PLAN_STATE_LABELS, CampaignKind, PlanState
from ui import plan_detail, plan_view, selection, widgets
from ui.text import md

actor = widgets.require(Action.VIEW_CAMPAIGNS)
st.title("活动方案")

NEXT_STEP = {
    PlanState.DRAFT: "继续完善并提交审核",
    PlanState.SUBMITTED: "等待审核",
    PlanState.IN_REVIEW: "等待审核",
    PlanState.RETURNED: "按审核意见修改后重新提交",
    PlanState.REJECTED: "已驳回，可复制为新活动重新设计",
    PlanState.APPROVED: "已通过，等待排期",
    PlanState.SCHEDULED: "到开始日期自动开始",
    PlanState.RUNNING: "活动进行中",
    PlanState.ENDED: "已结束",
}

province_wide = actor.city_id is None
if province_wide:
    with widgets.db() as session:
        city_names = {c.id: c.name for c in cities(session)}
    pick_city, left, middle, right = st.columns([1, 1, 1, 2])
    city_id = widgets.city_filter(pick_city, city_names, key="plans_city")
else:
    left, middle, right = st.columns([1, 1, 2])
    city_id = None
states = left.multiselect(
    "状态",
    list(PlanState),
    format_func=PLAN_STATE_LABELS.get,
    key="plans_states",
    placeholder="全部状态",
)
kinds = middle.multiselect(
    "类型",
    list(CampaignKind),
    format_func=CAMPAIGN_KIND_LABELS.get,
    key="plans_kinds",
    placeholder="全部类型",
)
text = right.text_input("搜索", key="plans_text", placeholder="活动名称")
with widgets.db() as session:
    rows = list_campaigns(
        session,
        actor=actor,
        filters=CampaignFilter(
            states=tuple(states), kinds=tuple(kinds), city_id=city_id, text=text
        ),
    )
    stage_list = stages(session)
stage_names = {s.position: s.name for s in stage_list}

if not rows:
    hint = (
        "在「活动设计」中新建活动。"
        if allowed(actor, Action.MANAGE_CAMPAIGNS)
        else "各市提交方案后会显示在这里。"
    )
    widgets.empty_state(f"没有符合条件的活动方案。{hint}")
    st.stop()


def stage_text(r) -> str:
    if r.state in AWAITING_REVIEW and r.current_stage:
        return (
            f"第 {r.current_stage}/{len(stage_list)} 环节 · {stage_names.get(r.current_stage, '')}"
        )
    return ""


frame = pd.DataFrame(
    [
        {
            "活动": r.name,
            "市": r.city,
            "类型": r.kind.label,
            "活动期": f"{r.start_date} 至 {r.end_date}",
            "状态": r.state.label,
            "审核环节": stage_text(r),
            "版本": f"v{r.version}" if r.version else "—",
            "下一步": NEXT_STEP[r.state],
            "更新": format_timestamp(r.updated_at),
        }
        for r in rows
    ]
)
if frame["市"].nunique() == 1:
    frame = frame.drop(columns="市")  # a city planner's own plans: the city says nothing
picked = selection.selectable_table(
    frame,
    [r.id for r in rows],
    key="plans_table",
    hide_index=True,
    column_config={
        "审核环节": st.column_config.TextColumn(width="medium"),
        "下一步": st.column_config.TextColumn(width="medium"),
    },
)
widgets.table_download(frame, "活动方案", key="plans_dl")

requested = st.query_params.get("plan")
by_id = {r.id: r for r in rows}
if picked is not None:
    current = rows[picked]
elif requested and requested.isdigit() and int(requested) in by_id:
    current = by_id[int(requested)]
else:
    st.caption("点选表格中的一行查看方案详情。")
    st.stop()

with widgets.db() as session:
    detail = campaign_detail(session, actor=actor, campaign_id=current.id)
st.subheader(md(current.name))
st.markdown(
    plan_view.state_badge(current.state, current.current_stage, len(stage_list))
    + f"　{NEXT_STEP[current.state]}"
)
comment = plan_view.latest_comment(detail)
if comment:
    (st.warning if current.state in (PlanState.RETURNED, PlanState.REJECTED) else st.info)(
        md(comment)
    )

actions = available_actions(actor, current.state)
step = next((a for a in actions if a in DATE_STEPS), None)
try:
    buttons = st.columns(4)
    if PlanAction.SUBMIT in actions:  # a plan that may be submitted may be reworked first
        if buttons[0].button("去修改", key="plans_edit", icon=":material/edit:"):
            st.switch_page("pages/campaigns.py", query_params={"plan": str(current.id)})
    if PlanAction.WITHDRAW in actions:
        if buttons[1].button(
            "撤回", key="plans_withdraw", icon=":material/undo:", help="审核员处理前可撤回修改"
        ):
            with widgets.db() as session:
                withdraw_plan(
                    session, actor=actor, campaign_id=current.id, expected_lock=current.lock_version
                )
            widgets.data_changed()
            st.toast("已撤回为草稿")
            st.rerun()
    if step is not None:
        due = due_action(current.state, current.start_date, current.end_date, shanghai_today())
        if buttons[2].button(
            f"手动{step.label}",
            key="plans_advance",
            icon=":material/fast_forward:",
            help="通常由定时任务按日期自动完成" + ("（今天已到期）" if due else "（尚未到日期）"),
        ):
            with widgets.db() as session:
                advance_campaign(session, actor=actor, campaign_id=current.id, action=step)
            widgets.data_changed()
            st.toast(f"活动已{step.label}")
            st.rerun()
except DomainError as exc:
    widgets.show_error(exc)

plan_detail.show(detail, actor, key="plans_detail")
