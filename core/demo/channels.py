"""Demo channel codes and their funnel: codes for every outlet of 长沙 (for the running
rights-day campaign), per-staff codes at the demo manager's outlet, a code that died, and
a month of scans, friends, group joins and conversions."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from core.channels.codes import batch_codes
from core.channels.events import hash_customer
from core.platform.auth import actor_for_user
from core.platform.clock import SHANGHAI, utcnow
from db.bulk import bulk_insert
from db.models import (
    Campaign,
    ChannelCode,
    ChannelType,
    EventType,
    OrgUnit,
    PlanState,
    User,
)


def seed_channels(session: Session, end_date: date, *, seed: int = 2026) -> int:
    """Create the demo codes and events unless codes exist; returns the number of codes."""
    if session.execute(sa.select(ChannelCode.id).limit(1)).first() is not None:
        return 0
    designer, planner = actor_for_user(session, "designer"), actor_for_user(session, "planner")
    manager = session.exec(select(User).where(User.username == "manager")).first()
    city = session.exec(select(OrgUnit).where(OrgUnit.code == "4301")).first()
    if designer is None or planner is None or city is None:
        return 0
    running = session.exec(
        select(Campaign.id).where(Campaign.city_id == city.id, Campaign.state == PlanState.RUNNING)
    ).first()
    codes = batch_codes(
        session, actor=designer, city_id=city.id, per="outlet", campaign_id=running
    ).codes
    if manager is not None:
        codes += batch_codes(
            session,
            actor=planner,
            city_id=city.id,
            per="staff",
            channel_type=ChannelType.POSTER,
            outlet_ids=[manager.org_id],
        ).codes
    _expire_one(session, codes[0].id, end_date)
    _events(session, [c.id for c in codes], end_date, random.Random(seed))
    return len(codes)


def _expire_one(session: Session, code_id: int, end_date: date) -> None:
    # A code whose window closed: the page and its owner are told it no longer works.
    session.execute(
        sa.update(ChannelCode)
        .where(ChannelCode.id == code_id)
        .values(active_until=end_date - timedelta(days=3))
    )
    session.commit()


def _events(session: Session, code_ids: list[int], end_date: date, rng: random.Random) -> None:
    staff_of = {}
    for code_id, staff_id in session.execute(
        sa.text("SELECT code_id, staff_id FROM channel_code_staff WHERE fallback = :f"),
        {"f": False},
    ):
        staff_of.setdefault(code_id, []).append(staff_id)
    rows, adds = [], {}
    for code_id in code_ids:
        pool = staff_of.get(code_id) or [None]
        for n in range(rng.randint(20, 90)):
            day = end_date - timedelta(days=rng.randint(0, 29))
            moment = datetime.combine(
                day,
                time(rng.randint(8, 19), rng.randint(0, 59), rng.randint(0, 59)),
                tzinfo=SHANGHAI,
            )
            staff = rng.choice(pool)
            customer = hash_customer(f"wm_demo_{code_id}_{n}")
            rows.append((code_id, moment, EventType.SCAN.value, "", staff, "route"))
            if rng.random() < 0.55:
                rows.append(
                    (
                        code_id,
                        moment + timedelta(minutes=2),
                        EventType.ADD_FRIEND.value,
                        customer,
                        staff,
                        "import",
                    )
                )
                adds[code_id] = adds.get(code_id, 0) + 1
                if rng.random() < 0.5:
                    rows.append(
                        (
                            code_id,
                            moment + timedelta(hours=1),
                            EventType.JOIN_GROUP.value,
                            customer,
                            staff,
                            "import",
                        )
                    )
                if rng.random() < 0.12:
                    rows.append(
                        (
                            code_id,
                            moment + timedelta(days=2),
                            EventType.CONVERT.value,
                            customer,
                            staff,
                            "import",
                        )
                    )
    bulk_insert(
        session,
        "channel_event",
        ("code_id", "at", "event_type", "customer", "staff_id", "source"),
        rows,
    )
    scans: dict[int, int] = {}
    for row in rows:
        if row[2] == EventType.SCAN.value:
            scans[row[0]] = scans.get(row[0], 0) + 1
    for code_id in code_ids:
        session.execute(
            sa.update(ChannelCode)
            .where(ChannelCode.id == code_id)
            .values(
                scans_count=scans.get(code_id, 0),
                adds_count=adds.get(code_id, 0),
                updated_at=utcnow(),
            )
        )
    session.commit()
