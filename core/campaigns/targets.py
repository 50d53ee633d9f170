"""What a campaign aims at (活动目标): its participating outlets and its KPIs spread over
them, for the boards and the reminders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, select

from core.campaigns.design import (
    CampaignDesign,
)
from core.campaigns.plans import campaign_scope
from core.platform.permissions import Action, Actor, ensure_allowed
from db.models import (
    Campaign,
    OrgLevel,
    OrgUnit,
    OutletTarget,
    PlanState,
)


def target_outlets(session: Session, design: CampaignDesign) -> list[int]:
    """The outlets a design targets, resolved against today's org tree: only outlets of the
    design's city (one that moved to another city since keeps its place in the plan's
    history, but gets no reminders or targets from it)."""
    query = select(OrgUnit.id).where(
        OrgUnit.level == OrgLevel.OUTLET, OrgUnit.city_id == design.city_id
    )
    if design.target_mode.value == "outlets":
        query = query.where(OrgUnit.id.in_(design.target_outlet_ids or [-1]))
    elif design.target_mode.value == "counties":
        query = query.where(OrgUnit.county_id.in_(design.target_county_ids or [-1]))
    return sorted(session.exec(query).all())


# KPI of a design per board metric (the other metrics have no campaign target).
KPI_OF_METRIC = {
    "new_friends": "kpi_new_friends",
    "conversions": "kpi_conversions",
    "deposits": "kpi_deposits_fen",
}


@dataclass(frozen=True)
class CampaignPeriod:
    id: int
    name: str
    city_id: int
    start_date: date
    end_date: date
    state: PlanState


def board_campaigns(session: Session, *, actor: Actor) -> list[CampaignPeriod]:
    """Approved-or-later campaigns whose period a board can cover (those the actor may see)."""
    ensure_allowed(actor, Action.VIEW_METRICS)
    query = (
        select(Campaign)
        .where(
            Campaign.state.in_(
                (PlanState.APPROVED, PlanState.SCHEDULED, PlanState.RUNNING, PlanState.ENDED)
            )
        )
        .where(campaign_scope(actor, Action.VIEW_METRICS))
        .order_by(Campaign.start_date.desc(), Campaign.id.desc())
    )
    return [
        CampaignPeriod(c.id, c.name, c.city_id, c.start_date, c.end_date, c.state)
        for c in session.exec(query)
    ]


def outlet_targets(session: Session, *, campaign_id: int, metric: str) -> dict[int, int]:
    """Each outlet's target for `metric` over the campaign: the imported per-outlet targets
    (core/metrics/targets.py) of the campaign, or of exactly its period, when there are
    any; otherwise each target outlet's share of the campaign's KPI (rounded up), or {}."""
    field_name = KPI_OF_METRIC.get(metric)
    campaign = session.get(Campaign, campaign_id)
    if field_name is None or campaign is None:
        return {}
    for key in (
        f"campaign:{campaign.id}",
        f"{campaign.start_date.isoformat()}/{campaign.end_date.isoformat()}",
    ):
        imported = session.exec(
            select(OutletTarget.outlet_id, OutletTarget.target).where(
                OutletTarget.period_key == key, OutletTarget.metric == metric
            )
        ).all()
        if imported:
            return {oid: int(target) for oid, target in imported}
    design = CampaignDesign.model_validate(campaign.design)
    outlets = target_outlets(session, design)
    total = getattr(design, field_name)
    if not outlets or total <= 0:
        return {}
    share = -(-total // len(outlets))
    return dict.fromkeys(outlets, share)
