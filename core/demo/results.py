"""Demo campaign results: coupon events for the ended and the running demo campaigns, and
the lift those campaigns had on their outlets' daily numbers, so the 复盘 has something
real to show (a measurable uplift against the other cities' outlets, spend split between
post and merchants, an attribution chain). The ended campaign's 复盘 is then frozen, as
the scheduler would when it ended."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns.design import CampaignDesign
from core.campaigns.targets import target_outlets
from core.channels.events import hash_customer
from core.metrics import snapshots
from core.platform.clock import SHANGHAI, utcnow
from core.platform.directory import outlet_directory
from core.platform.permissions import Actor
from core.results.retrospective import freeze_ended
from db.bulk import bulk_insert
from db.engine import write_transaction
from db.models import Campaign, CouponEvent, DailyMetric, PlanState

# What a participating outlet gains per campaign day, on top of its usual numbers.
LIFT = {"new_friends": (1, 4), "conversions": (0, 1), "deposits_fen": (200_000, 900_000)}
_COLUMNS = (
    "event_id",
    "campaign_id",
    "coupon_line",
    "outlet_id",
    "merchant_id",
    "customer",
    "kind",
    "face_value_fen",
    "discount_fen",
    "at",
    "imported_at",
)


def seed_results(session: Session, end_date: date, seed: int = 2026) -> int:
    """Coupon events and lift for the running and ended demo campaigns that have no coupon
    events yet; returns the number of coupon events created."""
    rng = random.Random(seed)
    campaigns = session.exec(
        select(Campaign)
        .where(Campaign.state.in_((PlanState.RUNNING, PlanState.ENDED)))
        .where(~Campaign.id.in_(sa.select(CouponEvent.campaign_id)))
        .order_by(Campaign.id)
    ).all()
    created = 0
    with write_transaction(session):
        for campaign in campaigns:
            design = CampaignDesign.model_validate(campaign.design)
            outlets = target_outlets(session, design)
            last = min(campaign.end_date, end_date)
            if not outlets or not design.coupons or last < campaign.start_date:
                continue
            _lift(session, rng, outlets, campaign.start_date, last)
            created += bulk_insert(
                session, "coupon_event", _COLUMNS, _events(rng, campaign, design, outlets, last)
            )
    if created:
        freeze_ended(session, Actor.system("seed-demo"))
    return created


def _lift(session: Session, rng: random.Random, outlets: list[int], start: date, end: date) -> None:
    """Raise the campaign outlets' flows over the campaign days (rows they reported)."""
    table = DailyMetric.__table__
    for outlet_id in outlets:
        strength = rng.uniform(0.5, 1.5)  # some outlets ran the campaign better
        gains = {k: round(rng.randint(*span) * strength) for k, span in LIFT.items()}
        session.execute(
            sa.update(table)
            .where(table.c.outlet_id == outlet_id, table.c.date.between(start, end))
            .values({k: getattr(table.c, k) + v for k, v in gains.items()})
        )
    days = session.execute(
        sa.select(table.c.date).where(table.c.date.between(start, end)).distinct()
    ).scalars()
    size = outlet_directory(session).size
    snapshots.refresh(session, dict.fromkeys(outlets, start), list(days), size)


def _events(
    rng: random.Random, campaign: Campaign, design: CampaignDesign, outlets: list[int], last: date
):
    """Claims on rights days, about half redeemed within a few days, the rest expiring."""
    days = [d for d in design.rights_days() if d <= last] or [campaign.start_date]
    now = utcnow()
    number = 0
    for day in days:
        for outlet_id in outlets:
            for _ in range(rng.randint(3, 12)):
                number += 1
                line = rng.randrange(len(design.coupons))
                coupon = design.coupons[line]
                merchant = coupon.merchant_ids[0] if coupon.merchant_ids else None
                customer = hash_customer(f"demo-{campaign.city_id}-{rng.randrange(5000)}")
                moment = datetime.combine(day, time(9), tzinfo=SHANGHAI) + timedelta(
                    minutes=rng.randrange(600)
                )
                base = (campaign.id, line + 1, outlet_id, merchant, customer)
                face = coupon.face_value_fen
                yield (f"D{campaign.id}-{number}C", *base, "claimed", face, 0, moment, now)
                if rng.random() < 0.55:
                    used = min(
                        moment + timedelta(days=rng.randrange(3), minutes=30),
                        datetime.combine(last, time(23), tzinfo=SHANGHAI),
                    )
                    discount = face if rng.random() < 0.8 else face * rng.randint(5, 9) // 10
                    yield (
                        f"D{campaign.id}-{number}R",
                        *base,
                        "redeemed",
                        face,
                        discount,
                        used,
                        now,
                    )
                elif day < last - timedelta(days=7):
                    gone = datetime.combine(day + timedelta(days=7), time(23, 59), tzinfo=SHANGHAI)
                    yield (f"D{campaign.id}-{number}X", *base, "expired", face, 0, gone, now)
