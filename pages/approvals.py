"""方案审核: the queue of plans waiting at the reviewer's stages (longest waiting first,
SLA badge after 2 working days), the whole plan, and approve / return / reject."""

import pandas as pd
import streamlit as st

from core.campaigns.approvals import Decision, decide_plan
from core.campaigns.plans import campaign_detail
from core.campaigns.review import SLA_WORKING_DAYS, QueueFilter, review_queue
from core.campaigns.stages import stages
from core.campaigns.states import AWAITING_REVIEW
from core.platform.clock import format_timestamp
from core.platform.errors import DomainError
from core.platform.org import cities
from core.platform.permissions import Action
from core.results.report import history_rows
from core.results.retrospective import city_history
from db.models import CAMPAIGN_KIND_LABELS, CampaignKind, PlanState
from ui import nav, plan_detail, plan_view, selection, widgets
from ui.text import md

actor = widgets.require(Action.REVIEW_PLANS)
st.title("方案审核")
widgets.show_flash()

with widgets.db() as session:
    city_list = cities(session)
    stage_list = stages(session)
city_names = {c.id: c.name for c in city_list}
a, b, c, d = st.columns([1, 1, 1, 1])
city_id = widgets.city_filter(a, city_names, key="queue_city")
kinds = b.multiselect(
    "类型",
    list(CampaignKind),
    format_func=CAMPAIGN_KIND_LABELS.get,
    key="queue_kinds",
    placeholder="全部类型",
)
state_choice = c.selectbox(
    "状态", ["待审核", "已提交", "审核中"], key="queue_state", placeholder="请选择"
)
only_mine = d.toggle("只看轮到我的", value=True, key="queue_mine")
state_filter = {
    "待审核": AWAITING_REVIEW,
    "已提交": (PlanState.SUBMITTED,),
    "审核中": (PlanState.IN_REVIEW,),
}[state_choice]

with widgets.db() as session:
    queue = review_queue(
        session,
        actor=actor,
        filters=QueueFilter(
            city_id=city_id, kinds=tuple(kinds), states=state_filter, only_mine=only_mine
        ),
    )

if not queue:
    widgets.empty_state(
        "没有等待您审核的方案。" + ("可关闭「只看轮到我的」查看其他环节。" if only_mine else ""),
        icon=":material/task_alt:",
    )
    st.stop()

overdue = sum(r.overdue for r in queue)
st.caption(
    f"共 {len(queue)} 个方案，按等待时间排序；等待超过 {SLA_WORKING_DAYS} 个工作日标为超时"
    + (f"，其中 {overdue} 个已超时。" if overdue else "。")
)
frame = pd.DataFrame(
    [
        {
            "SLA": "⚠ 超时" if r.overdue else "正常",
            "活动": r.name,
            "市": r.city,
            "类型": r.kind.label,
            "环节": f"第 {r.stage}/{len(stage_list)} · {r.stage_name}",
            "版本": f"v{r.version}",
            "等待(工作日)": r.waiting_days,
            "到达时间": format_timestamp(r.waiting_since),
            "合规提示": r.compliance_hits,
            "轮到我": "是" if r.mine else "",
        }
        for r in queue
    ]
)
picked = selection.selectable_table(
    frame.style.apply(
        lambda row: [
            "color: #B42318; font-weight: 600" if row["SLA"] != "正常" else "" for _ in row
        ],
        axis=1,
    ),
    [r.campaign_id for r in queue],
    key="queue_table",
    hide_index=True,
    column_config=widgets.number_columns(frame),
)
requested = st.query_params.get("plan")
by_id = {r.campaign_id: r for r in queue}
if picked is not None:
    row = queue[picked]
elif requested and requested.isdigit() and int(requested) in by_id:
    row = by_id[int(requested)]
else:
    row = queue[0]

with widgets.db() as session:
    detail = campaign_detail(session, actor=actor, campaign_id=row.campaign_id)
st.subheader(f"{md(row.name)}（{md(row.city)}）")
st.markdown(
    plan_view.state_badge(row.state, row.stage, len(stage_list))
    + f"　第 {row.version} 版　已等待 {row.waiting_days} 个工作日"
)
if detail.hits:
    st.warning(
        f"该方案有 {len(detail.hits)} 处合规提示，请在「合规提示」中查看。", icon=":material/gavel:"
    )
for warning in detail.budget.warnings():
    st.error(warning, icon=":material/account_balance_wallet:")

plan_detail.show(detail, actor, key="review_detail")

with widgets.db() as session:
    history = city_history(session, actor=actor, campaign_id=row.campaign_id)
with st.expander(
    f"{md(row.city)}近三次活动复盘", expanded=bool(history), icon=":material/assessment:"
):
    if history:
        st.dataframe(pd.DataFrame(history_rows(history)), hide_index=True, key="review_history")
        nav.link_to(actor, "results", query_params={"campaign": str(history[0]["campaign"]["id"])})
    else:
        st.caption("该市还没有已结束并定稿的活动复盘。")

st.divider()
if not row.mine:
    st.info(f"该方案在第 {row.stage} 环节「{md(row.stage_name)}」，不是您负责的环节，只能查看。")
    st.stop()
comment = st.text_area(
    "审核意见",
    key=f"review_comment_{row.campaign_id}",
    max_chars=2000,
    placeholder="通过可不填；退回或驳回须写明原因和修改要求",
)


@st.dialog("确认审核决定")
def confirm(decision: Decision) -> None:
    st.markdown(f"确定 **{decision.label}**「{md(row.name)}」？")
    if comment.strip():
        st.caption(f"意见：{md(comment.strip())}")
    if st.button(f"确认{decision.label}", type="primary", key="review_confirm"):
        try:
            with widgets.db() as session:
                decide_plan(
                    session,
                    actor=actor,
                    campaign_id=row.campaign_id,
                    decision=decision,
                    comment=comment,
                    expected_lock=row.lock_version,
                )
        except DomainError as exc:
            widgets.show_error(exc)
            return
        widgets.data_changed()
        widgets.flash(f"已{decision.label}「{row.name}」")
        st.rerun()


approve, give_back, reject = st.columns([1, 1, 4])
if approve.button("通过", type="primary", key="review_approve", icon=":material/check:"):
    confirm(Decision.APPROVE)
if give_back.button("退回修改", key="review_return", icon=":material/undo:"):
    confirm(Decision.RETURN)
if reject.button("驳回", key="review_reject", icon=":material/block:"):
    confirm(Decision.REJECT)
