"""Provincial review of city plans (方案审核): submission, decisions stage by stage with
optimistic locking, withdrawal, and the date-driven steps (scheduled → running → ended).
Every change of state goes through the table in `states`: guard, change, history, audit,
notify, in one transaction.

States: draft → submitted → in review (stage k of n) → approved | returned | rejected;
approved → scheduled → running → ended. A returned plan is reworked by the city and
resubmitted as a new version; review continues at the stage that returned it (earlier
stages' approvals stand).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns.compliance import check
from core.campaigns.design import CampaignDesign, submit_problems
from core.campaigns.plans import (
    city_members,
    city_planners,
    ensure_campaign_allowed,
    ensure_design_references,
    ensure_not_own,
    load_campaign,
    record_event,
)
from core.campaigns.stages import StageRead, stage_at, stage_count, stages
from core.campaigns.states import AWAITING_REVIEW, PlanAction, S, due_action, next_state
from core.platform import audit, notifications
from core.platform.audit import AuditAction
from core.platform.clock import shanghai_today, utcnow
from core.platform.errors import (
    Conflict,
    FieldProblem,
    PermissionDenied,
    ValidationFailed,
)
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import (
    Campaign,
    PlanEvent,
    PlanState,
    PlanVersion,
)


def _change_state(
    session: Session,
    campaign: Campaign,
    action: PlanAction,
    expected_lock: int | None,
    **changes: object,
) -> PlanState:
    """Move the plan to its next state with a compare-and-set on the lock version, so of two
    people acting on the same plan at the same moment exactly one succeeds."""
    target = next_state(campaign.state, action)
    lock = campaign.lock_version if expected_lock is None else expected_lock
    values = {"state": target, "lock_version": lock + 1, "updated_at": utcnow(), **changes}
    result = session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.lock_version == lock)
        .values(**values)
    )
    if result.rowcount != 1:
        raise Conflict("该方案刚刚已被他人处理，请刷新查看最新状态")
    session.expire(campaign)
    return target


# --- stages --------------------------------------------------------------------------------


# --- planner side -------------------------------------------------------------------------


def submit_plan(
    session: Session, *, actor: Actor, campaign_id: int, expected_lock: int | None = None
) -> PlanState:
    """Validate the whole design, freeze it as a new version and send it to review."""
    with write_transaction(session):
        campaign = load_campaign(session, campaign_id)
        ensure_campaign_allowed(session, actor, Action.MANAGE_CAMPAIGNS, campaign)
        design = CampaignDesign.model_validate(campaign.design)
        ensure_design_references(session, actor, design, "方案未提交")
        problems = submit_problems(design, **_city_ids(session, campaign.city_id))
        if problems:
            raise ValidationFailed(problems, summary="方案还不完整，未提交")
        if stage_count(session) == 0:
            raise Conflict("尚未配置审核环节，请联系管理员")
        stage = _resume_stage(session, campaign)
        version = campaign.version + 1
        before = campaign.state
        target = _change_state(
            session,
            campaign,
            PlanAction.SUBMIT,
            expected_lock,
            version=version,
            current_stage=stage,
            submitted_at=utcnow(),
        )
        session.add(
            PlanVersion(
                campaign_id=campaign.id,
                version=version,
                design=campaign.design,
                submitted_by=actor.user_id,
            )
        )
        hits = check(session, design.texts())
        note = f"（合规提示 {len(hits)} 处）" if hits else ""
        record_event(
            session,
            campaign,
            actor,
            PlanAction.SUBMIT.value,
            before,
            target,
            stage=stage,
            version=version,
            comment=note,
        )
        _notify_stage(
            session,
            campaign,
            stage_at(stages(session), stage),
            f"新方案待审核：{campaign.name}（第 {version} 版）",
        )
        audit.record(
            session,
            actor=actor,
            action=AuditAction.PLAN_SUBMIT,
            target_type="campaign",
            target_id=campaign.id,
            summary=f"提交方案「{campaign.name}」第 {version} 版，进入第 {stage} 环节{note}",
            before={"state": before.value},
            after={"state": target.value, "version": version, "stage": stage},
        )
        return target


def _resume_stage(session: Session, campaign: Campaign) -> int:
    """First submission: stage 1. After a return: the stage that returned it."""
    if campaign.state is S.RETURNED:
        returned_at = session.exec(
            select(PlanEvent.stage)
            .where(
                PlanEvent.campaign_id == campaign.id, PlanEvent.action == PlanAction.RETURN.value
            )
            .order_by(PlanEvent.at.desc(), PlanEvent.id.desc())
        ).first()
        return min(returned_at or 1, stage_count(session))
    return 1


def _city_ids(session: Session, city_id: int) -> dict[str, set[int]]:
    counties, outlets, merchants = city_members(session, city_id)
    return {
        "outlets": {u for u, _ in outlets},
        "counties": {u for u, _ in counties},
        "merchants": {m for m, _ in merchants},
    }


def withdraw_plan(
    session: Session, *, actor: Actor, campaign_id: int, expected_lock: int | None = None
) -> PlanState:
    """Take a submitted plan back before anyone decided it at its current stage."""
    with write_transaction(session):
        campaign = load_campaign(session, campaign_id)
        ensure_campaign_allowed(session, actor, Action.MANAGE_CAMPAIGNS, campaign)
        before = campaign.state
        target = _change_state(
            session,
            campaign,
            PlanAction.WITHDRAW,
            expected_lock,
            current_stage=None,
            submitted_at=None,
        )
        record_event(
            session,
            campaign,
            actor,
            PlanAction.WITHDRAW.value,
            before,
            target,
            version=campaign.version,
        )
        audit.record(
            session,
            actor=actor,
            action=AuditAction.PLAN_WITHDRAW,
            target_type="campaign",
            target_id=campaign.id,
            summary=f"撤回方案「{campaign.name}」",
            before={"state": before.value},
            after={"state": target.value},
        )
        return target


# --- reviewer side -------------------------------------------------------------------------


class Decision(StrEnum):
    APPROVE = "approve"
    RETURN = "return"
    REJECT = "reject"

    @property
    def label(self) -> str:
        return {"approve": "通过", "return": "退回修改", "reject": "驳回"}[self.value]


def decide_plan(
    session: Session,
    *,
    actor: Actor,
    campaign_id: int,
    decision: Decision,
    comment: str,
    expected_lock: int,
) -> PlanState:
    """A reviewer's decision at the plan's current stage. `expected_lock` is the lock version
    the reviewer saw; if the plan moved since, they are told and nothing changes."""
    ensure_allowed(actor, Action.REVIEW_PLANS)
    comment = comment.strip()
    if decision is not Decision.APPROVE and not comment:
        raise ValidationFailed([FieldProblem("comment", f"{decision.label}须填写审核意见")])
    if len(comment) > 2000:
        raise ValidationFailed([FieldProblem("comment", "审核意见最多 2000 字")])
    with write_transaction(session):
        campaign = load_campaign(session, campaign_id)
        ensure_campaign_allowed(session, actor, Action.VIEW_CAMPAIGNS, campaign)
        ensure_not_own(actor, campaign)
        if campaign.lock_version != expected_lock or campaign.state not in AWAITING_REVIEW:
            raise Conflict("该方案刚刚已被他人处理，请刷新查看最新状态")
        all_stages = stages(session)
        stage = stage_at(all_stages, campaign.current_stage or 1)
        if actor.user_id not in stage.reviewer_ids:
            raise PermissionDenied(f"您不是第 {stage.position} 环节「{stage.name}」的审核员")
        last = stage.position >= len(all_stages)
        action = {
            Decision.APPROVE: PlanAction.APPROVE_FINAL if last else PlanAction.APPROVE,
            Decision.RETURN: PlanAction.RETURN,
            Decision.REJECT: PlanAction.REJECT,
        }[decision]
        before = campaign.state
        if action is PlanAction.APPROVE:  # on to the next stage; its waiting time starts now
            changes: dict[str, object] = {
                "current_stage": stage.position + 1,
                "submitted_at": utcnow(),
            }
        else:
            changes = {"current_stage": None}
        target = _change_state(session, campaign, action, expected_lock, **changes)
        record_event(
            session,
            campaign,
            actor,
            action.value,
            before,
            target,
            stage=stage.position,
            version=campaign.version,
            comment=comment,
        )
        following = None if last else stage_at(all_stages, stage.position + 1)
        _notify_decision(session, campaign, stage, following, decision, target, comment)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.PLAN_DECIDE,
            target_type="campaign",
            target_id=campaign.id,
            summary=f"第 {stage.position} 环节「{stage.name}」{decision.label}「{campaign.name}」"
            + (f"：{comment}" if comment else ""),
            before={"state": before.value, "stage": stage.position},
            after={"state": target.value, "comment": comment},
        )
        return target


def _notify_stage(session: Session, campaign: Campaign, stage: StageRead, title: str) -> None:
    notifications.notify(
        session,
        stage.reviewer_ids,
        title=title,
        body=f"「{campaign.name}」已进入第 {stage.position} 环节「{stage.name}」，请及时审核。",
        link=f"approvals?plan={campaign.id}",
    )


def _notify_decision(
    session: Session,
    campaign: Campaign,
    stage: StageRead,
    following: StageRead | None,
    decision: Decision,
    target: PlanState,
    comment: str,
) -> None:
    recipients = set(city_planners(session, campaign.city_id))
    if campaign.created_by:
        recipients.add(campaign.created_by)
    what = {
        S.APPROVED: "已审核通过",
        S.RETURNED: "被退回修改",
        S.REJECTED: "被驳回",
        S.IN_REVIEW: f"通过第 {stage.position} 环节",
    }[target]
    body = f"第 {stage.position} 环节「{stage.name}」{decision.label}。" + (
        f"意见：{comment}" if comment else ""
    )
    notifications.notify(
        session,
        recipients,
        title=f"方案「{campaign.name}」{what}",
        body=body,
        link=f"plans?plan={campaign.id}",
    )
    if target is S.IN_REVIEW and following is not None:
        _notify_stage(session, campaign, following, f"方案待审核：{campaign.name}")


# --- the queue ------------------------------------------------------------------------------


# --- versions --------------------------------------------------------------------------------


# --- dates ------------------------------------------------------------------------------------


def advance_campaign(
    session: Session, *, actor: Actor, campaign_id: int, action: PlanAction
) -> PlanState:
    """Admin's manual step along approved → scheduled → running → ended (the scheduler does it by date)."""
    ensure_allowed(actor, Action.ADVANCE_CAMPAIGNS)
    if action not in (PlanAction.SCHEDULE, PlanAction.START, PlanAction.END):
        raise ValidationFailed([FieldProblem("action", "只能排期、开始或结束活动")])
    with write_transaction(session):
        campaign = load_campaign(session, campaign_id)
        return _advance(session, actor, campaign, action)


def _advance(session: Session, actor: Actor, campaign: Campaign, action: PlanAction) -> PlanState:
    before = campaign.state
    target = _change_state(session, campaign, action, None)
    record_event(session, campaign, actor, action.value, before, target, version=campaign.version)
    audit.record(
        session,
        actor=actor,
        action=AuditAction.CAMPAIGN_STATE,
        target_type="campaign",
        target_id=campaign.id,
        summary=f"活动「{campaign.name}」{before.label} → {target.label}",
        before={"state": before.value},
        after={"state": target.value},
    )
    return target


def advance_due_campaigns(
    session: Session, *, actor: Actor, today: date | None = None
) -> list[tuple[int, PlanState]]:
    """Every date step due today, repeated until nothing moves (a campaign approved after
    its end date goes all the way to ended). Idempotent: a second run changes nothing."""
    ensure_allowed(actor, Action.ADVANCE_CAMPAIGNS)
    today = today or shanghai_today()
    moved = []
    with write_transaction(session):
        while True:
            candidates = session.exec(
                select(Campaign).where(Campaign.state.in_((S.APPROVED, S.SCHEDULED, S.RUNNING)))
            ).all()
            due = [(c, due_action(c.state, c.start_date, c.end_date, today)) for c in candidates]
            due = [(c, a) for c, a in due if a is not None]
            if not due:
                return moved
            for campaign, action in due:
                moved.append((campaign.id, _advance(session, actor, campaign, action)))
