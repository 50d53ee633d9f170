"""What reviewers look at (审核队列): the plans waiting at each stage with the SLA flag, and
two versions of a plan side by side."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlmodel import Session, select

from core.campaigns.compliance import active_terms, check_texts
from core.campaigns.design import CampaignDesign
from core.campaigns.plans import (
    campaign_scope,
    ensure_campaign_allowed,
    flat_design,
    load_campaign,
    version_design,
)
from core.campaigns.stages import stages
from core.campaigns.states import AWAITING_REVIEW
from core.platform.clock import to_shanghai, utcnow
from core.platform.permissions import Action, Actor, ensure_allowed
from db.models import (
    Campaign,
    CampaignKind,
    OrgUnit,
    PlanState,
)

SLA_WORKING_DAYS = 2


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
