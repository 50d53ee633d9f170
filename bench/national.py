"""A national-scale data set for the board benchmark: an org tree of N outlets and D days
of daily metrics (raw rows for the baseline, snapshots for the app), cached under
bench/data/ and reused while its parameters are unchanged."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.demo.seed import demo_metric_arrays, running_totals
from core.metrics import snapshots
from core.platform.clock import utcnow
from db.bulk import bulk_insert, indexes_dropped
from db.engine import get_engine
from db.migrate import empty_postgres_schema, upgrade_to_head
from db.models import OrgLevel, OrgUnit

END = date(2026, 11, 24)
CITIES = 14


def build(url: str, outlets: int, days: int, say=print) -> dict:
    """Create (or reuse) the data set at `url`; returns its description."""
    engine = get_engine(url)
    wanted = {"outlets": outlets, "days": days, "end": str(END), "version": 2}
    with engine.connect() as conn:
        try:
            stored = conn.execute(sa.text("SELECT spec FROM bench_spec")).scalar()
            if stored and json.loads(stored) == wanted:
                return wanted
        except sa.exc.DBAPIError:
            conn.rollback()
    _reset(url, engine)
    upgrade_to_head(url)
    started = time.perf_counter()
    with Session(engine) as session:
        outlet_ids, weights = _tree(session, outlets)
        say(f"  org tree: {len(outlet_ids)} outlets")
        dates = [END - timedelta(days=days - 1 - i) for i in range(days)]
        arrays = demo_metric_arrays(np.random.default_rng(7), len(outlet_ids), dates, weights)
        _raw_rows(session, arrays, outlet_ids, dates, say)
        say("  snapshots…")
        size = int(max(outlet_ids)) + 1
        snapshots.write_arrays(session, dates, running_totals(arrays), size, np.asarray(outlet_ids))
        session.execute(sa.text("CREATE TABLE bench_spec (spec TEXT)"))
        session.execute(sa.text("INSERT INTO bench_spec VALUES (:s)"), {"s": json.dumps(wanted)})
        session.commit()
    say(f"  built in {time.perf_counter() - started:.0f} s")
    return wanted


def _reset(url: str, engine: sa.Engine) -> None:
    if engine.dialect.name == "postgresql":
        empty_postgres_schema(url)
    else:
        with engine.begin() as conn:
            tables = [
                r[0]
                for r in conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type='table'"))
            ]
            for table in tables:
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))


def _tree(session: Session, outlets: int) -> tuple[list[int], list[float]]:
    province = OrgUnit(code="99", name="基准省", level=OrgLevel.PROVINCE)
    session.add(province)
    session.flush()
    rows, weights, next_id = [], [], province.id + 1
    per_city = outlets // CITIES
    now = utcnow()
    units = []
    for c in range(CITIES):
        city_id = next_id
        next_id += 1
        units.append(
            (city_id, f"99{c:02d}", f"基准市{c + 1}", "city", province.id, city_id, None, now, now)
        )
        for k in range(per_city // 250 + 1):
            county_id = next_id
            next_id += 1
            units.append(
                (
                    county_id,
                    f"99{c:02d}{k:02d}",
                    f"基准区{c + 1}-{k + 1}",
                    "county",
                    city_id,
                    city_id,
                    county_id,
                    now,
                    now,
                )
            )
            for o in range(min(250, per_city - k * 250)):
                outlet_id = next_id
                next_id += 1
                units.append(
                    (
                        outlet_id,
                        f"99{c:02d}{k:02d}{o:03d}",
                        f"基准网点{c + 1}-{k + 1}-{o + 1}",
                        "outlet",
                        county_id,
                        city_id,
                        county_id,
                        now,
                        now,
                    )
                )
                rows.append(outlet_id)
                weights.append(1.0 + 0.05 * (c % 5))
    columns = (
        "id",
        "code",
        "name",
        "level",
        "parent_id",
        "city_id",
        "county_id",
        "created_at",
        "updated_at",
    )
    bulk_insert(session, "org_unit", columns, units)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT setval('org_unit_id_seq', (SELECT max(id) FROM org_unit))"))
    return rows, weights


def _raw_rows(session: Session, arrays: dict, ids: list[int], dates: list[date], say) -> None:
    reported = arrays["reported"]
    columns = (
        "new_friends",
        "total_friends",
        "groups",
        "group_members",
        "conversions",
        "deposits_fen",
    )
    now = utcnow()
    id_array = np.asarray(ids)
    with indexes_dropped(session, "daily_metric"):
        for j, day in enumerate(dates):
            present = np.flatnonzero(reported[:, j])
            values = [arrays[k][present, j].tolist() for k in columns]
            rows = zip(
                [day] * len(present),
                id_array[present].tolist(),
                *values,
                [now] * len(present),
                strict=True,
            )
            bulk_insert(
                session, "daily_metric", ("date", "outlet_id", *columns, "imported_at"), rows
            )
            if j % 60 == 0:
                say(f"  raw rows: day {j + 1}/{len(dates)}")
