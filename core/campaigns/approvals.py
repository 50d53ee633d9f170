"""Provincial review of city plans (方案审核): the state machine, submission, decisions
stage by stage with optimistic locking, the reviewers' queue, version comparison, the
review stages, and date-driven state changes.

States: draft → submitted → in review (stage k of n) → approved | returned | rejected;
approved → scheduled → running → ended. A returned plan is reworked by the city and
resubmitted as a new version; review continues at the stage that returned it (earlier
stages' approvals stand).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns.compliance import active_terms, check, check_texts
from core.campaigns.design import CampaignDesign, submit_problems
from core.campaigns.plans import (
    campaign_scope,
    city_members,
    city_planners,
    ensure_campaign_allowed,
    ensure_design_references,
    ensure_not_own,
    flat_design,
    load_campaign,
    record_event,
    version_design,
)
from core.platform import audit, notifications
from core.platform.audit import AuditAction
from core.platform.clock import shanghai_today, to_shanghai, utcnow
from core.platform.errors import (
    Conflict,
    FieldProblem,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from core.platform.permissions import Action, Actor, allowed, ensure_allowed
from db.engine import write_transaction
from db.models import (
    Campaign,
    CampaignKind,
    OrgUnit,
    PlanEvent,
    PlanState,
    PlanVersion,
    ReviewStage,
    ReviewStageMember,
    Role,
    User,
)

SLA_WORKING_DAYS = 2


class PlanAction(StrEnum):
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    APPROVE = "approve"  # passes a stage that is not the last
    APPROVE_FINAL = "approve_final"  # passes the last stage
    RETURN = "return"
    REJECT = "reject"
    SCHEDULE = "schedule"
    START = "start"
    END = "end"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    PlanAction.SUBMIT: "提交",
    PlanAction.WITHDRAW: "撤回",
    PlanAction.APPROVE: "通过",
    PlanAction.APPROVE_FINAL: "通过",
    PlanAction.RETURN: "退回修改",
    PlanAction.REJECT: "驳回",
    PlanAction.SCHEDULE: "排期",
    PlanAction.START: "开始",
    PlanAction.END: "结束",
}

S = PlanState
# The state machine: the only allowed (state, action) pairs and where they lead.
TRANSITIONS: dict[tuple[PlanState, PlanAction], PlanState] = {
    (S.DRAFT, PlanAction.SUBMIT): S.SUBMITTED,
    (S.RETURNED, PlanAction.SUBMIT): S.SUBMITTED,
    (S.SUBMITTED, PlanAction.WITHDRAW): S.DRAFT,
    (S.SUBMITTED, PlanAction.APPROVE): S.IN_REVIEW,
    (S.IN_REVIEW, PlanAction.APPROVE): S.IN_REVIEW,
    (S.SUBMITTED, PlanAction.APPROVE_FINAL): S.APPROVED,
    (S.IN_REVIEW, PlanAction.APPROVE_FINAL): S.APPROVED,
    (S.SUBMITTED, PlanAction.RETURN): S.RETURNED,
    (S.IN_REVIEW, PlanAction.RETURN): S.RETURNED,
    (S.SUBMITTED, PlanAction.REJECT): S.REJECTED,
    (S.IN_REVIEW, PlanAction.REJECT): S.REJECTED,
    (S.APPROVED, PlanAction.SCHEDULE): S.SCHEDULED,
    (S.SCHEDULED, PlanAction.START): S.RUNNING,
    (S.RUNNING, PlanAction.END): S.ENDED,
}
AWAITING_REVIEW = (S.SUBMITTED, S.IN_REVIEW)
DATE_STEPS = (PlanAction.SCHEDULE, PlanAction.START, PlanAction.END)  # done by the scheduler

# Who may take each action (scope and stage are checked again when it is taken).
ACTION_PERMISSIONS = {
    PlanAction.SUBMIT: Action.MANAGE_CAMPAIGNS,
    PlanAction.WITHDRAW: Action.MANAGE_CAMPAIGNS,
    PlanAction.APPROVE: Action.REVIEW_PLANS,
    PlanAction.APPROVE_FINAL: Action.REVIEW_PLANS,
    PlanAction.RETURN: Action.REVIEW_PLANS,
    PlanAction.REJECT: Action.REVIEW_PLANS,
    **dict.fromkeys(DATE_STEPS, Action.ADVANCE_CAMPAIGNS),
}


def next_state(state: PlanState, action: PlanAction) -> PlanState:
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise Conflict(f"方案当前为「{state.label}」，不能{action.label}")
    return target


def available_actions(actor: Actor, state: PlanState) -> list[PlanAction]:
    """The actions the state machine allows from `state` that the actor's role may take."""
    return [
        action
        for (source, action) in TRANSITIONS
        if source is state and allowed(actor, ACTION_PERMISSIONS[action])
    ]


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


@dataclass(frozen=True)
class StageRead:
    position: int
    name: str
    reviewer_ids: list[int]
    reviewer_names: list[str]


def stages(session: Session) -> list[StageRead]:
    members: dict[int, list[tuple[int, str]]] = {}
    for stage_id, user_id, name in session.exec(
        select(ReviewStageMember.stage_id, User.id, User.display_name)
        .join(User, ReviewStageMember.user_id == User.id)
        .order_by(User.id)
    ):
        members.setdefault(stage_id, []).append((user_id, name))
    return [
        StageRead(
            stage.position,
            stage.name,
            [user_id for user_id, _ in members.get(stage.id, [])],
            [name for _, name in members.get(stage.id, [])],
        )
        for stage in session.exec(select(ReviewStage).order_by(ReviewStage.position))
    ]


def reviewers(session: Session, *, actor: Actor) -> list[tuple[int, str]]:
    """Active provincial reviewers, who can be members of stages."""
    ensure_allowed(actor, Action.MANAGE_SETTINGS)
    query = select(User.id, User.display_name, User.username).where(
        User.role == Role.PROVINCE_REVIEWER, User.active
    )
    return [
        (uid, f"{name}（{username}）")
        for uid, name, username in session.exec(query.order_by(User.username))
    ]


def set_stages(session: Session, *, actor: Actor, definition: list[tuple[str, list[int]]]) -> None:
    """Replace the review stages: (name, reviewer user ids) in order."""
    ensure_allowed(actor, Action.MANAGE_SETTINGS)
    problems = []
    if not definition:
        problems.append(FieldProblem("stages", "至少需要一个审核环节"))
    for position, (name, reviewers) in enumerate(definition, start=1):
        if not name.strip():
            problems.append(FieldProblem("stages", f"第 {position} 环节缺少名称"))
        if not reviewers:
            problems.append(
                FieldProblem("stages", f"第 {position} 环节「{name}」至少需要一名审核员")
            )
    with write_transaction(session):
        valid = set(
            session.exec(
                select(User.id).where(User.role == Role.PROVINCE_REVIEWER, User.active)
            ).all()
        )
        if any(set(reviewers) - valid for _, reviewers in definition):
            problems.append(FieldProblem("stages", "审核员须为启用中的省分审核员"))
        in_review = session.exec(
            select(sa.func.max(Campaign.current_stage)).where(Campaign.state.in_(AWAITING_REVIEW))
        ).one()
        if in_review and in_review > len(definition):
            problems.append(
                FieldProblem(
                    "stages", f"有方案正处于第 {in_review} 环节，环节数不能少于 {in_review}"
                )
            )
        if problems:
            raise ValidationFailed(problems, summary="审核环节未保存")
        before = [{"name": s.name, "reviewers": s.reviewer_ids} for s in stages(session)]
        session.execute(sa.delete(ReviewStageMember))
        session.execute(sa.delete(ReviewStage))
        session.flush()
        for position, (name, reviewers) in enumerate(definition, start=1):
            stage = ReviewStage(position=position, name=name.strip())
            session.add(stage)
            session.flush()
            session.add_all(
                ReviewStageMember(stage_id=stage.id, user_id=u) for u in sorted(set(reviewers))
            )
        audit.record(
            session,
            actor=actor,
            action=AuditAction.SETTINGS_CHANGE,
            target_type="review_stages",
            summary="修改审核环节：" + " → ".join(n for n, _ in definition),
            before={"stages": before},
            after={"stages": [{"name": n, "reviewers": r} for n, r in definition]},
        )


def _stage(all_stages: list[StageRead], position: int) -> StageRead:
    for stage in all_stages:
        if stage.position == position:
            return stage
    raise NotFound(f"审核环节 {position} 不存在")


def _stage_count(session: Session) -> int:
    return session.exec(select(sa.func.count()).select_from(ReviewStage)).one()


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
        if _stage_count(session) == 0:
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
            _stage(stages(session), stage),
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
        return min(returned_at or 1, _stage_count(session))
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
        stage = _stage(all_stages, campaign.current_stage or 1)
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
        following = None if last else _stage(all_stages, stage.position + 1)
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


def working_days_between(start: date, end: date) -> int:
    """Monday–Friday days after `start` up to and including `end` (public holidays are not
    known to the app; a weekend is never counted)."""
    if end <= start:
        return 0
    return int(np.busday_count(start + timedelta(days=1), end + timedelta(days=1)))


@dataclass(frozen=True)
class QueueRow:
    campaign_id: int
    name: str
    city: str
    kind: CampaignKind
    state: PlanState
    stage: int
    stage_name: str
    version: int
    waiting_since: datetime
    waiting_days: int  # working days
    overdue: bool
    mine: bool  # the actor reviews this stage
    lock_version: int
    compliance_hits: int


@dataclass(frozen=True)
class QueueFilter:
    city_id: int | None = None
    kinds: tuple[CampaignKind, ...] = ()
    states: tuple[PlanState, ...] = AWAITING_REVIEW
    only_mine: bool = False


def review_queue(
    session: Session,
    *,
    actor: Actor,
    filters: QueueFilter | None = None,
    now: datetime | None = None,
) -> list[QueueRow]:
    """Plans waiting for review, longest waiting first, with the SLA flag."""
    ensure_allowed(actor, Action.VIEW_CAMPAIGNS)
    filters = filters or QueueFilter()
    now = now or utcnow()
    today = to_shanghai(now).date()
    query = (
        select(Campaign)
        .where(
            Campaign.state.in_(filters.states or AWAITING_REVIEW),
            campaign_scope(actor, Action.VIEW_CAMPAIGNS),
        )
        .order_by(Campaign.submitted_at, Campaign.id)
    )
    if filters.city_id:
        query = query.where(Campaign.city_id == filters.city_id)
    if filters.kinds:
        query = query.where(Campaign.kind.in_(filters.kinds))
    stage_by_position = {s.position: s for s in stages(session)}
    terms = active_terms(session)
    rows = []
    for c in session.exec(query):
        stage = stage_by_position.get(c.current_stage or 1)
        mine = stage is not None and actor.user_id in stage.reviewer_ids
        if filters.only_mine and not mine:
            continue
        since = c.submitted_at or c.updated_at
        days = working_days_between(to_shanghai(since).date(), today)
        design = CampaignDesign.model_validate(c.design)
        rows.append(
            QueueRow(
                c.id,
                c.name,
                session.get(OrgUnit, c.city_id).name,
                c.kind,
                c.state,
                c.current_stage or 1,
                stage.name if stage else "",
                c.version,
                since,
                days,
                days > SLA_WORKING_DAYS,
                mine,
                c.lock_version,
                len(check_texts(terms, design.texts())),
            )
        )
    return rows


# --- versions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiffRow:
    field: str
    left: str
    right: str

    @property
    def changed(self) -> bool:
        return self.left != self.right


def compare_versions(
    session: Session, *, actor: Actor, campaign_id: int, left: int | None, right: int | None
) -> list[DiffRow]:
    """Side-by-side fields of two versions (None: the current, unsubmitted design)."""
    campaign = load_campaign(session, campaign_id)
    ensure_campaign_allowed(session, actor, Action.VIEW_CAMPAIGNS, campaign)
    a, b = (flat_design(session, version_design(session, campaign, v)) for v in (left, right))
    keys = list(a) + [k for k in b if k not in a]
    return [DiffRow(k, a.get(k, "—"), b.get(k, "—")) for k in keys]


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


def due_action(state: PlanState, start: date, end: date, today: date) -> PlanAction | None:
    """The date step a campaign in `state` running [start, end] is due for today, if any."""
    if state is S.APPROVED:
        return PlanAction.SCHEDULE
    if state is S.SCHEDULED and start <= today:
        return PlanAction.START
    if state is S.RUNNING and end < today:
        return PlanAction.END
    return None


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
