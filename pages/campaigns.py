"""活动设计: design a campaign (rights days, star rights, coupons, merchants, targets),
see its budget and compliance hints live, save drafts and submit for review."""

import streamlit as st

from core.campaigns.approvals import submit_plan
from core.campaigns.plans import (
    EDITABLE_STATES,
    campaign_detail,
    copy_campaign,
    delete_draft,
    design_preview,
    editor_choices,
    list_campaigns,
    managed_cities,
    save_draft,
    starting_design,
)
from core.platform.errors import DomainError, ValidationFailed
from core.platform.permissions import Action
from db.models import PlanState
from ui import campaign_editor, plan_view, widgets
from ui.text import md

actor = widgets.require(Action.MANAGE_CAMPAIGNS)
st.title("活动设计")

with widgets.db() as session:
    mine = list_campaigns(session, actor=actor)
    cities = managed_cities(session, actor=actor)
editable = [c for c in mine if c.state in EDITABLE_STATES]
NEW = 0
options = [NEW] + [c.id for c in editable]
labels = {NEW: "＋ 新建活动", **{c.id: f"{c.name}（{c.city} · {c.state.label}）" for c in editable}}
requested = st.query_params.get("plan")
default = int(requested) if requested and requested.isdigit() and int(requested) in options else NEW


def follow_pick() -> None:
    # The ?plan= query parameter says which plan is open; the picker just sets it, and is
    # keyed by it so that links, saves and copies re-select the right plan.
    value = st.session_state[pick_key]
    if value == NEW:
        st.query_params.pop("plan", None)
    else:
        st.query_params["plan"] = str(value)


pick_key = f"design_pick_{default}"
top_left, top_right = st.columns([2, 1])
chosen = top_left.selectbox(
    "编辑",
    options,
    index=options.index(default),
    format_func=labels.get,
    key=pick_key,
    on_change=follow_pick,
    placeholder="请选择",
)

with top_right.popover("以已有活动为模板", icon=":material/content_copy:"):
    if mine:
        source = st.selectbox(
            "模板",
            mine,
            format_func=lambda c: f"{c.name}（{c.state.label}）",
            key="design_copy_from",
            placeholder="请选择",
        )
        if st.button("复制为新草稿", key="design_copy"):
            try:
                with widgets.db() as session:
                    copied = copy_campaign(session, actor=actor, source_id=source.id)
                widgets.data_changed()
                st.query_params["plan"] = str(copied.id)
                st.toast(f"已复制为「{md(copied.name)}」", icon=":material/check_circle:")
                st.rerun()
            except DomainError as exc:
                widgets.show_error(exc)
    else:
        st.caption("还没有可复制的活动。")

try:
    with widgets.db() as session:
        if chosen == NEW:
            city_id = (
                cities[0][0]
                if len(cities) == 1
                else st.selectbox(
                    "活动所属市",
                    [c for c, _ in cities],
                    format_func=dict(cities).get,
                    key="design_city",
                    placeholder="请选择",
                )
            )
            detail, design = None, starting_design(session, actor=actor, city_id=city_id)
        else:
            detail = campaign_detail(session, actor=actor, campaign_id=chosen)
            design = detail.design
        choices = editor_choices(session, actor=actor, city_id=design.city_id)
except DomainError as exc:
    widgets.show_error(exc)
    st.stop()

if detail is not None and detail.row.state is PlanState.RETURNED:
    st.warning(
        f"该方案已被退回。{md(plan_view.latest_comment(detail))}  修改后可重新提交。",
        icon=":material/undo:",
    )

form_key = f"design_{chosen}_{detail.row.lock_version if detail else design.city_id}"
edited = campaign_editor.edit(design, choices, key=form_key)

with widgets.db() as session:
    preview = design_preview(
        session, actor=actor, design=edited, campaign_id=detail.row.id if detail else None
    )
side_budget, side_calendar = st.tabs(["预算测算", "权益日日历"])
with side_budget:
    plan_view.budget_panel(preview.budget, edited)
    plan_view.compliance_panel(preview.hits)
with side_calendar:
    plan_view.calendar(edited)

if detail is not None:
    plan_view.attachments_editor(actor, detail, key=f"att_up_{chosen}")
else:
    st.caption("保存草稿后即可上传附件。")


def save() -> int:
    with widgets.db() as session:
        row = save_draft(
            session,
            actor=actor,
            design=edited,
            campaign_id=detail.row.id if detail else None,
            expected_lock=detail.row.lock_version if detail else None,
        )
    st.query_params["plan"] = str(row.id)
    return row.id


SUBMIT_PROBLEMS = "design_submit_problems"


def show_submit_problems() -> None:
    """After an incomplete 保存并提交: the draft was saved (the picker now names it), and
    here is exactly what is missing before it can go to review."""
    problems = st.session_state.pop(SUBMIT_PROBLEMS, None)
    if not problems:
        return
    st.error(
        "草稿已保存，但还不能提交审核。请补全以下内容后再点「保存并提交审核」：\n\n"
        + "\n".join(f"- {md(p)}" for p in problems),
        icon=":material/assignment_late:",
    )


def ask_delete(campaign_id: int) -> None:
    st.session_state["design_delete_asked"] = campaign_id


def confirm_delete(campaign_id: int, name: str) -> None:
    """A second, explicit step before a draft is deleted (kept in session state, so it
    survives the rerun of the click that asked for it)."""
    if st.session_state.get("design_delete_asked") != campaign_id:
        return
    with st.container(border=True):
        st.warning(
            f"确定删除草稿「{md(name)}」？删除后无法恢复，附件也会一并删除。",
            icon=":material/delete_forever:",
        )
        yes, no, _ = st.columns([1, 1, 3])
        if yes.button("确认删除", type="primary", key="design_delete_confirm"):
            st.session_state.pop("design_delete_asked", None)
            try:
                with widgets.db() as session:
                    delete_draft(session, actor=actor, campaign_id=campaign_id)
            except DomainError as exc:
                widgets.show_error(exc)
                return
            widgets.data_changed()
            st.query_params.clear()
            st.toast("草稿已删除")
            st.rerun()
        if no.button("取消", key="design_delete_cancel"):
            st.session_state.pop("design_delete_asked", None)
            st.rerun()


show_submit_problems()
save_col, submit_col, delete_col = st.columns([1, 1, 3])
if save_col.button("保存草稿", type="secondary", key="design_save", icon=":material/save:"):
    try:
        save()
        widgets.data_changed()
        st.toast("草稿已保存", icon=":material/check_circle:")
        st.rerun()
    except DomainError as exc:
        widgets.show_error(exc)
if submit_col.button("保存并提交审核", type="primary", key="design_submit", icon=":material/send:"):
    saved_id = None
    try:
        saved_id = save()
        with widgets.db() as session:
            submit_plan(session, actor=actor, campaign_id=saved_id)
        widgets.data_changed()
        st.query_params.clear()
        st.toast("已提交，等待省分审核", icon=":material/send:")
        st.switch_page("pages/plans.py", query_params={"plan": str(saved_id)})
    except ValidationFailed as exc:
        if saved_id is None:
            widgets.show_error(exc)  # not even saved: the message says why
        else:
            widgets.data_changed()
            st.session_state[SUBMIT_PROBLEMS] = [p.message for p in exc.problems] or [exc.message]
            st.rerun()  # the picker and the form now show the saved draft
    except DomainError as exc:
        widgets.show_error(exc)
if detail is not None and detail.row.version == 0:
    delete_col.button(
        "删除草稿",
        key="design_delete",
        icon=":material/delete:",
        on_click=ask_delete,
        args=(detail.row.id,),
    )
    confirm_delete(detail.row.id, detail.row.name)
