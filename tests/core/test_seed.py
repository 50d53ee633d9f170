"""The demo province: realistic shape, deterministic, consistent running totals."""

from collections import Counter
from datetime import date

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.demo.seed import seed_demo
from core.metrics import snapshots
from core.metrics.dashboard import home_overview
from core.platform.auth import actor_for_user
from core.platform.directory import outlet_directory
from db.engine import get_engine
from db.migrate import upgrade_to_head
from db.models import (
    Campaign,
    DailyMetric,
    Merchant,
    MetricSnapshot,
    OrgLevel,
    OrgUnit,
    PlanState,
    Role,
    Staff,
    User,
)

END = date(2026, 11, 24)


def _levels(session: Session) -> Counter:
    return Counter(session.exec(select(OrgUnit.level)).all())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_full_demo_province(session: Session) -> None:
    summary = seed_demo(session, end_date=END)
    levels = _levels(session)
    assert levels[OrgLevel.PROVINCE] == 1 and levels[OrgLevel.CITY] == 14
    assert 110 <= levels[OrgLevel.COUNTY] <= 130
    assert 1800 <= levels[OrgLevel.OUTLET] <= 2200
    roles = Counter(session.exec(select(Staff.role)).all())
    assert (
        set(roles) == {"marketer", "teller", "courier", "branch_head"}
        and sum(roles.values()) > 6000
    )
    assert session.exec(select(sa.func.count()).select_from(Merchant)).one() > 300
    days = session.exec(select(sa.func.count(sa.distinct(DailyMetric.date)))).one()
    assert days == 365 and session.exec(select(sa.func.max(DailyMetric.date))).one() == END
    outlets = levels[OrgLevel.OUTLET]
    assert 0.95 * outlets * 365 < summary.metric_rows < outlets * 365
    assert set(session.exec(select(User.role)).all()) == set(Role)
    assert set(session.exec(select(Campaign.state)).all()) == set(
        PlanState
    )  # a plan in every state
    # every demo account lands on a populated home page
    for username in ("admin", "reviewer1", "planner", "manager", "designer"):
        overview = home_overview(
            session, actor=actor_for_user(session, username), today=date(2026, 11, 25)
        )
        assert overview.kpis[0].value > 0 and len(overview.trend) == 30, username


def _fingerprint(url: str) -> tuple:
    with Session(get_engine(url)) as s:
        seed_demo(s, seed=11, end_date=END, days=40, city_limit=2)
        names = tuple(s.exec(select(OrgUnit.code, OrgUnit.name).order_by(OrgUnit.code)).all())
        sums = s.execute(
            sa.select(sa.func.sum(DailyMetric.new_friends), sa.func.sum(DailyMetric.deposits_fen))
        ).one()
        staff = tuple(s.exec(select(Staff.name).order_by(Staff.wecom_userid)).all())
    return names, tuple(sums), staff


def test_same_seed_same_province(tmp_path) -> None:
    urls = [f"sqlite:///{tmp_path / f'{n}.db'}" for n in ("a", "b")]
    for url in urls:
        upgrade_to_head(url)
    first, second = (_fingerprint(u) for u in urls)
    assert first == second
    other = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade_to_head(other)
    with Session(get_engine(other)) as s:
        seed_demo(s, seed=12, end_date=END, days=40, city_limit=2)
        assert (
            tuple(s.exec(select(OrgUnit.code, OrgUnit.name).order_by(OrgUnit.code)).all())
            != first[0]
        )


def test_seed_twice_creates_nothing_new(session: Session) -> None:
    seed_demo(session, end_date=END, days=20, city_limit=1)
    count = session.exec(select(sa.func.count()).select_from(OrgUnit)).one()
    again = seed_demo(session, end_date=END, days=20, city_limit=1)
    assert again.skipped and again.accounts == 0
    assert session.exec(select(sa.func.count()).select_from(OrgUnit)).one() == count


def test_seeded_snapshots_equal_a_rebuild_from_the_daily_rows(session: Session) -> None:
    seed_demo(session, end_date=END, days=60, city_limit=2)
    size = outlet_directory(session).size

    def all_snapshots() -> list[tuple]:
        rows = session.execute(sa.select(MetricSnapshot.date)).scalars().all()
        result = []
        for day in sorted(rows):
            snap = snapshots.load(session, day).padded(size)
            result.append(
                (
                    day,
                    *(
                        tuple(snap.arrays[k].tolist())
                        for k in (*snapshots.VALUE_FIELDS, "reported")
                    ),
                )
            )
        return result

    seeded = all_snapshots()
    assert len(seeded) == 60
    snapshots.rebuild_all(session, size)
    rebuilt = all_snapshots()
    session.rollback()
    assert seeded == rebuilt
