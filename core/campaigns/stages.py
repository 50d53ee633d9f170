"""Review stages (审核环节): the ordered stages and their reviewers, and the admin's change
of them."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns.states import AWAITING_REVIEW
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.errors import (
    FieldProblem,
    NotFound,
    ValidationFailed,
)
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import (
    Campaign,
    ReviewStage,
    ReviewStageMember,
    Role,
    User,
)


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


def stage_at(all_stages: list[StageRead], position: int) -> StageRead:
    for stage in all_stages:
        if stage.position == position:
            return stage
    raise NotFound(f"审核环节 {position} 不存在")


def stage_count(session: Session) -> int:
    return session.exec(select(sa.func.count()).select_from(ReviewStage)).one()
