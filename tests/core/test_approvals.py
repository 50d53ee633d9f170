"""Campaign plans through review: the state machine, stages, versions, optimistic locking,
notifications, permissions and date steps."""

import threading
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns import approvals, review, states
from core.campaigns.approvals import Decision, decide_plan, submit_plan
from core.campaigns.attachments import add_attachment
from core.campaigns.budget import budget_for, city_budgets, set_city_budgets
from core.campaigns.compliance import seed_default_terms
from core.campaigns.plans import (
    campaign_detail,
    copy_campaign,
    delete_draft,
    design_preview,
    save_draft,
)
from core.campaigns.review import QueueFilter, review_queue
from core.campaigns.states import TRANSITIONS, PlanAction, available_actions
from core.platform.errors import Conflict, PermissionDenied, ValidationFailed
from core.platform.notifications import my_notifications
from db.engine import get_engine
from db.models import AuditLog, Campaign, OrgUnit, PlanState, PlanVersion, Role
from tests.factories import complete_design, make_stages, make_tree, make_user, make_users

S = PlanState


@pytest.fixture
def world(session: Session):
    make_tree(session)
    users = make_users(session)
    users["reviewer2"] = make_user(session, "reviewer2", Role.PROVINCE_REVIEWER)
    users["reviewer3"] = make_user(session, "reviewer3", Role.PROVINCE_REVIEWER)
    make_stages(session, ["reviewer", "reviewer3"], ["reviewer2"])
    return users


def _lock(session: Session, campaign_id: int) -> int:
    session.rollback()  # a fresh read: other sessions may have moved the plan
    return session.get(Campaign, campaign_id).lock_version


def decide(
    session: Session, actor, campaign_id: int, decision: Decision, comment: str = ""
) -> PlanState:
    return decide_plan(
        session,
        actor=actor,
        campaign_id=campaign_id,
        decision=decision,
        comment=comment,
        expected_lock=_lock(session, campaign_id),
    )


def draft(session: Session, users, **changes: object) -> int:
    return save_draft(
        session, actor=users[Role.CITY_PLANNER], design=complete_design(session, **changes)
    ).id


def test_state_machine_is_one_table() -> None:
    allowed = {(a.value, b.value): c.value for (a, b), c in TRANSITIONS.items()}
    assert allowed[("draft", "submit")] == "submitted"
    assert allowed[("in_review", "approve_final")] == "approved"
    assert ("approved", "return") not in allowed and ("ended", "start") not in allowed
    with pytest.raises(Conflict, match="不能"):
        states.next_state(S.REJECTED, PlanAction.SUBMIT)


def test_two_stages_to_approval_with_history_notifications_and_audit(
    session: Session, world
) -> None:
    cid = draft(session, world)
    assert submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=cid) is S.SUBMITTED
    stage1 = {n.title for n in my_notifications(session, actor=world[Role.PROVINCE_REVIEWER])}
    assert any("待审核" in t for t in stage1)
    assert my_notifications(session, actor=world["reviewer2"]) == []  # not their stage yet
    assert decide(session, world[Role.PROVINCE_REVIEWER], cid, Decision.APPROVE) is S.IN_REVIEW
    assert any("待审核" in n.title for n in my_notifications(session, actor=world["reviewer2"]))
    assert decide(session, world["reviewer2"], cid, Decision.APPROVE, "同意") is S.APPROVED
    detail = campaign_detail(session, actor=world[Role.CITY_PLANNER], campaign_id=cid)
    assert [e.action for e in detail.events] == ["create", "submit", "approve", "approve_final"]
    assert detail.row.current_stage is None and detail.versions == [1]
    planner_news = [n.title for n in my_notifications(session, actor=world[Role.CITY_PLANNER])]
    assert any("审核通过" in t for t in planner_news) and any(
        "通过第 1 环节" in t for t in planner_news
    )
    assert my_notifications(session, actor=world[Role.OUTLET_MANAGER]) == []  # nobody else hears
    actions = session.exec(select(AuditLog.action)).all()
    assert actions.count("plan.decide") == 2 and "plan.submit" in actions


def test_return_needs_a_comment_and_resubmission_is_a_new_version_at_the_same_stage(
    session: Session, world
) -> None:
    cid = draft(session, world)
    planner = world[Role.CITY_PLANNER]
    submit_plan(session, actor=planner, campaign_id=cid)
    decide(session, world[Role.PROVINCE_REVIEWER], cid, Decision.APPROVE)
    with pytest.raises(ValidationFailed, match="审核意见"):
        decide(session, world["reviewer2"], cid, Decision.RETURN, "  ")
    assert decide(session, world["reviewer2"], cid, Decision.RETURN, "预算过高") is S.RETURNED
    reworked = complete_design(session, name="12月逢8会员权益日（修订）")
    save_draft(session, actor=planner, design=reworked, campaign_id=cid)
    assert submit_plan(session, actor=planner, campaign_id=cid) is S.SUBMITTED
    session.expire_all()
    campaign = session.get(Campaign, cid)
    assert (campaign.version, campaign.current_stage) == (2, 2)  # continues where it was returned
    diff = review.compare_versions(
        session, actor=world[Role.PROVINCE_REVIEWER], campaign_id=cid, left=1, right=2
    )
    changed = {row.field for row in diff if row.changed}
    assert "活动名称" in changed and "权益日规则" not in changed
    assert len(session.exec(select(PlanVersion).where(PlanVersion.campaign_id == cid)).all()) == 2


def test_the_unsubmitted_design_compares_on_either_side(session: Session, world) -> None:
    cid = draft(session, world)
    planner = world[Role.CITY_PLANNER]
    submit_plan(session, actor=planner, campaign_id=cid)
    decide(session, world[Role.PROVINCE_REVIEWER], cid, Decision.RETURN, "请修改名称")
    reworked = complete_design(session, name="修订后的名称")
    save_draft(session, actor=planner, design=reworked, campaign_id=cid)

    def name_row(left: int | None, right: int | None) -> tuple[str, str]:
        rows = review.compare_versions(
            session, actor=planner, campaign_id=cid, left=left, right=right
        )
        row = next(r for r in rows if r.field == "活动名称")
        return row.left, row.right

    submitted = name_row(1, 1)[0]
    assert submitted != "修订后的名称"
    assert name_row(None, 1) == ("修订后的名称", submitted)
    assert name_row(1, None) == (submitted, "修订后的名称")


def test_available_actions_follow_the_table_and_the_role(world) -> None:
    planner, reviewer = world[Role.CITY_PLANNER], world[Role.PROVINCE_REVIEWER]
    assert available_actions(planner, S.DRAFT) == [PlanAction.SUBMIT]
    assert available_actions(planner, S.SUBMITTED) == [PlanAction.WITHDRAW]
    assert set(available_actions(reviewer, S.IN_REVIEW)) == {
        PlanAction.APPROVE,
        PlanAction.APPROVE_FINAL,
        PlanAction.RETURN,
        PlanAction.REJECT,
    }
    assert available_actions(reviewer, S.APPROVED) == []
    assert available_actions(world[Role.ADMIN], S.SCHEDULED) == [PlanAction.START]
    assert available_actions(world[Role.OUTLET_MANAGER], S.DRAFT) == []
    assert all(available_actions(world[Role.ADMIN], s) == [] for s in (S.REJECTED, S.ENDED))


def test_reject_is_final(session: Session, world) -> None:
    cid = draft(session, world)
    submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=cid)
    assert decide(session, world["reviewer3"], cid, Decision.REJECT, "不符合规定") is S.REJECTED
    with pytest.raises(Conflict):
        submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=cid)


def test_reviewers_decide_only_their_stage_and_never_their_own_plan(
    session: Session, world
) -> None:
    cid = draft(session, world)
    submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=cid)
    with pytest.raises(PermissionDenied, match="第 1 环节"):
        decide(session, world["reviewer2"], cid, Decision.APPROVE)
    for role in (Role.CITY_PLANNER, Role.ADMIN, Role.DESIGNER, Role.OUTLET_MANAGER):
        with pytest.raises(PermissionDenied):
            decide(session, world[role], cid, Decision.APPROVE)
    session.execute(
        sa.update(Campaign)
        .where(Campaign.id == cid)
        .values(created_by=world[Role.PROVINCE_REVIEWER].user_id)
    )
    session.commit()
    with pytest.raises(PermissionDenied, match="自己"):
        decide(session, world[Role.PROVINCE_REVIEWER], cid, Decision.APPROVE)


def test_a_stale_decision_is_refused(session: Session, world) -> None:
    cid = draft(session, world)
    submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=cid)
    seen = _lock(session, cid)
    decide_plan(
        session,
        actor=world["reviewer3"],
        campaign_id=cid,
        decision=Decision.APPROVE,
        comment="",
        expected_lock=seen,
    )
    with pytest.raises(Conflict, match="已被他人处理"):
        decide_plan(
            session,
            actor=world[Role.PROVINCE_REVIEWER],
            campaign_id=cid,
            decision=Decision.REJECT,
            comment="不行",
            expected_lock=seen,
        )


def test_two_reviewers_at_the_same_moment_exactly_one_counts(
    session: Session, world, db_url: str
) -> None:
    cid = draft(session, world)
    submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=cid)
    seen = _lock(session, cid)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(reviewer, decision: Decision) -> None:
        with Session(get_engine(db_url), expire_on_commit=False) as own:
            barrier.wait()
            try:
                decide_plan(
                    own,
                    actor=reviewer,
                    campaign_id=cid,
                    decision=decision,
                    comment="意见",
                    expected_lock=seen,
                )
                outcomes.append("ok")
            except Conflict:
                outcomes.append("conflict")

    threads = [
        threading.Thread(target=act, args=(world[Role.PROVINCE_REVIEWER], Decision.APPROVE)),
        threading.Thread(target=act, args=(world["reviewer3"], Decision.REJECT)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    session.rollback()
    events = campaign_detail(session, actor=world[Role.ADMIN], campaign_id=cid).events
    assert [e.action for e in events].count("approve") + [e.action for e in events].count(
        "reject"
    ) == 1


def test_submission_refuses_an_incomplete_plan_and_changes_nothing(session: Session, world) -> None:
    cid = draft(session, world, coupons=[])
    with pytest.raises(ValidationFailed, match="权益券"):
        submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=cid)
    session.rollback()
    assert session.get(Campaign, cid).state is S.DRAFT and session.get(Campaign, cid).version == 0


def test_planners_work_only_in_their_city(session: Session, world) -> None:
    with pytest.raises(PermissionDenied):
        save_draft(
            session, actor=world[Role.CITY_PLANNER], design=complete_design(session, city_code="C2")
        )
    other = save_draft(
        session, actor=world[Role.ADMIN], design=complete_design(session, city_code="C2")
    ).id
    with pytest.raises(PermissionDenied):
        campaign_detail(session, actor=world[Role.CITY_PLANNER], campaign_id=other)
    with pytest.raises(PermissionDenied):
        submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=other)


def test_drafts_save_half_done_copy_and_delete(session: Session, world) -> None:
    planner = world[Role.CITY_PLANNER]
    half = complete_design(
        session,
        coupons=[],
        kpi_new_friends=0,
        kpi_conversions=0,
        kpi_deposits_fen=0,
        notes="还在想",
    )
    row = save_draft(session, actor=planner, design=half)
    reopened = campaign_detail(session, actor=planner, campaign_id=row.id).design
    assert reopened == half
    with pytest.raises(ValidationFailed, match="活动名称"):
        save_draft(
            session, actor=planner, design=half.model_copy(update={"name": ""}), campaign_id=row.id
        )
    copy = copy_campaign(session, actor=planner, source_id=row.id)
    assert copy.name.endswith("（副本）") and copy.state is S.DRAFT
    assert session.get(Campaign, copy.id).copied_from_id == row.id
    delete_draft(session, actor=planner, campaign_id=row.id)
    assert session.get(Campaign, row.id) is None


def test_stale_edit_is_refused(session: Session, world) -> None:
    planner = world[Role.CITY_PLANNER]
    row = save_draft(session, actor=planner, design=complete_design(session))
    save_draft(
        session,
        actor=planner,
        design=complete_design(session, notes="第二次"),
        campaign_id=row.id,
        expected_lock=row.lock_version,
    )
    with pytest.raises(Conflict, match="已被他人修改"):
        save_draft(
            session,
            actor=planner,
            design=complete_design(session, notes="过时"),
            campaign_id=row.id,
            expected_lock=row.lock_version,
        )


def test_attachments_checked_by_content_and_size(session: Session, world) -> None:
    cid = draft(session, world)
    planner = world[Role.CITY_PLANNER]
    ok = add_attachment(
        session, actor=planner, campaign_id=cid, filename="方案.pdf", data=b"%PDF-1.7 test"
    )
    assert ok.content_type == "application/pdf"
    with pytest.raises(ValidationFailed, match="PDF、PNG、JPEG"):
        add_attachment(
            session, actor=planner, campaign_id=cid, filename="病毒.pdf", data=b"MZ\x90\x00"
        )
    with pytest.raises(ValidationFailed, match="10 MB"):
        add_attachment(
            session,
            actor=planner,
            campaign_id=cid,
            filename="big.png",
            data=b"\x89PNG" + b"0" * (10 * 1024 * 1024),
        )


def test_queue_orders_by_waiting_and_flags_the_sla(session: Session, world) -> None:
    first, second = draft(session, world, name="早提交"), draft(session, world, name="晚提交")
    for cid in (second, first):
        submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=cid)
    monday = datetime(2026, 11, 23, 1, 0, tzinfo=review.to_shanghai(datetime.now()).tzinfo)
    session.execute(
        sa.update(Campaign)
        .where(Campaign.id == first)
        .values(submitted_at=monday - timedelta(days=4))
    )  # Thursday before
    session.execute(sa.update(Campaign).where(Campaign.id == second).values(submitted_at=monday))
    session.commit()
    queue = review_queue(
        session, actor=world[Role.PROVINCE_REVIEWER], now=monday + timedelta(days=1)
    )
    assert [r.name for r in queue] == ["早提交", "晚提交"]
    assert (queue[0].waiting_days, queue[0].overdue) == (3, True)  # Fri, Mon, Tue
    assert (queue[1].waiting_days, queue[1].overdue) == (1, False)
    assert (
        queue[0].mine
        and review_queue(session, actor=world["reviewer2"], filters=QueueFilter(only_mine=True))
        == []
    )


def test_working_days_skip_weekends() -> None:
    assert review.working_days_between(date(2026, 11, 20), date(2026, 11, 23)) == 1  # Fri → Mon
    assert review.working_days_between(date(2026, 11, 23), date(2026, 11, 23)) == 0


def test_dates_move_approved_plans_along_and_twice_changes_nothing(session: Session, world) -> None:
    cid = draft(session, world)
    submit_plan(session, actor=world[Role.CITY_PLANNER], campaign_id=cid)
    decide(session, world[Role.PROVINCE_REVIEWER], cid, Decision.APPROVE)
    decide(session, world["reviewer2"], cid, Decision.APPROVE)
    admin = world[Role.ADMIN]
    assert approvals.advance_due_campaigns(session, actor=admin, today=date(2026, 11, 25)) == [
        (cid, S.SCHEDULED)
    ]
    assert approvals.advance_due_campaigns(session, actor=admin, today=date(2026, 11, 25)) == []
    assert approvals.advance_due_campaigns(session, actor=admin, today=date(2026, 12, 1)) == [
        (cid, S.RUNNING)
    ]
    assert approvals.advance_due_campaigns(session, actor=admin, today=date(2027, 1, 1)) == [
        (cid, S.ENDED)
    ]
    with pytest.raises(PermissionDenied):
        approvals.advance_due_campaigns(session, actor=world[Role.CITY_PLANNER])


def test_city_budgets_save_together_or_not_at_all(session: Session, world) -> None:
    c1, c2 = (session.exec(select(OrgUnit).where(OrgUnit.code == c)).one().id for c in ("C1", "C2"))
    admin = world[Role.ADMIN]
    assert set_city_budgets(session, actor=admin, year=2026, caps={c1: 500_000, c2: 0}) == 1
    with pytest.raises(ValidationFailed, match="非负"):
        set_city_budgets(session, actor=admin, year=2026, caps={c1: 100, c2: -1})
    with pytest.raises(PermissionDenied):
        set_city_budgets(session, actor=world[Role.CITY_PLANNER], year=2026, caps={c1: 1})
    assert city_budgets(session, actor=admin, year=2026) == {c1: 500_000}  # c1 kept, not 100
    assert set_city_budgets(session, actor=admin, year=2026, caps={c1: 500_000, c2: 7}) == 1
    logged = session.exec(select(AuditLog).where(AuditLog.target_type == "city_budget")).all()
    assert sorted(row.target_id for row in logged) == [f"{c1}/2026", f"{c2}/2026"]


def test_design_preview_is_the_live_budget_and_hints_of_the_planners_own_city(
    session: Session, world
) -> None:
    seed_default_terms(session)
    design = complete_design(session, name="稳赚不赔的权益日")
    preview = design_preview(session, actor=world[Role.CITY_PLANNER], design=design)
    assert preview.budget == budget_for(session, design)
    assert any(hit.term == "稳赚" for hit in preview.hits)
    c2 = session.exec(select(OrgUnit).where(OrgUnit.code == "C2")).one()
    with pytest.raises(PermissionDenied):
        design_preview(
            session,
            actor=world[Role.CITY_PLANNER],
            design=design.model_copy(update={"city_id": c2.id}),
        )


def test_an_outlet_and_a_merchant_with_the_same_id_keep_their_own_names(
    session: Session, world
) -> None:
    from core.campaigns.design import TargetMode
    from db.models import Merchant

    outlet = session.exec(select(OrgUnit).where(OrgUnit.code == "O111")).one()
    # The two tables number their rows independently: give the merchant the outlet's id.
    session.add(Merchant(id=outlet.id, city_id=outlet.city_id, name="星沙超市"))
    session.commit()
    design = complete_design(session).model_copy(
        update={
            "target_mode": TargetMode.OUTLETS,
            "target_outlet_ids": [outlet.id],
            "merchant_ids": [outlet.id],
            "coupons": [
                c.model_copy(update={"merchant_ids": [outlet.id]})
                for c in complete_design(session).coupons
            ],
        }
    )
    planner = world[Role.CITY_PLANNER]
    cid = save_draft(session, actor=planner, design=design).id
    detail = campaign_detail(session, actor=planner, campaign_id=cid)
    assert detail.names.unit_list(detail.design.target_outlet_ids) == "O111支局"
    assert detail.names.merchant_list(detail.design.merchant_ids) == "星沙超市"
    submit_plan(session, actor=planner, campaign_id=cid)
    rows = review.compare_versions(session, actor=planner, campaign_id=cid, left=1, right=None)
    shown = {r.field: r.left for r in rows}
    assert shown["参与网点"] == "O111支局" and shown["参与商户"] == "星沙超市"
    assert shown["权益券 1·承兑商户"] == "星沙超市"
