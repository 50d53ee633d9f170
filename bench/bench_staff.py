"""Staff boards at national scale: 200,000 staff x 365 days of one daily staff metric
(73 M staff-day values; `--scale small` is 20,000 staff). `staff_leaderboard` (top 100 with
rank change, from the per-day series snapshots indexed by stint) against a plain SQL
GROUP BY over the raw staff-day rows (primary key (metric_key, date, staff_id) covers the
range), on SQLite and PostgreSQL, for the province, a city and an outlet over 1, 30 and
365 days; and the peak memory of a process serving staff boards.

The data set is written one day at a time (raw rows by executemany / COPY, one snapshot
per day from a running sum), so building it needs a few arrays of 200,000, not 73 M."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from bench.common import DATA_DIR, Result, ensure_postgres_database, timed
from bench.national import _reset, _tree
from core.metrics import series
from core.metrics.staff_rankings import StaffBoardQuery, staff_leaderboard
from core.platform.clock import utcnow
from core.platform.periods import Period
from core.platform.permissions import Actor
from db.bulk import bulk_insert
from db.engine import get_engine
from db.migrate import upgrade_to_head
from db.models import Role

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get(
    "BENCH_STAFF_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/rds_bench_staff"
)
END = date(2026, 11, 24)
PER_OUTLET = 10
KEY = "new_friends"
BASELINE = "plain SQL GROUP BY over raw staff-day rows (primary key covers metric, date)"


def _backends(scale: str) -> list[tuple[str, str]]:
    DATA_DIR.mkdir(exist_ok=True)
    backends = [("sqlite", f"sqlite:///{DATA_DIR / f'staff-{scale}.db'}")]
    if os.environ.get("BENCH_STAFF_SQLITE_ONLY") != "1" and ensure_postgres_database(PG_URL):
        backends.append(("postgresql", PG_URL))
    return backends


def build(url: str, staff: int, days: int, say=print) -> None:
    """Create (or reuse) the data set at `url`."""
    engine = get_engine(url)
    wanted = {"staff": staff, "days": days, "end": str(END), "version": 1}
    with engine.connect() as conn:
        try:
            stored = conn.execute(sa.text("SELECT spec FROM bench_spec")).scalar()
            if stored and json.loads(stored) == wanted:
                return
        except sa.exc.DBAPIError:
            conn.rollback()
    if engine.dialect.name == "sqlite":
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{engine.url.database}{suffix}").unlink(missing_ok=True)
    else:
        _reset(url, engine)
    upgrade_to_head(url)
    started = time.perf_counter()
    with Session(engine) as session:
        outlet_ids, _ = _tree(session, staff // PER_OUTLET)
        staff_ids = _staff(session, outlet_ids, staff)
        say(f"  {len(staff_ids):,} staff at {len(outlet_ids):,} outlets")
        _values(session, staff_ids, days, say)
        session.execute(sa.text("CREATE TABLE bench_spec (spec TEXT)"))
        session.execute(sa.text("INSERT INTO bench_spec VALUES (:s)"), {"s": json.dumps(wanted)})
        session.commit()
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        conn.commit()
    say(f"  built in {time.perf_counter() - started:.0f} s")


def _staff(session: Session, outlet_ids: list[int], count: int) -> np.ndarray:
    """Staff ids 1..count, each with one stint of the same id at their outlet."""
    now = utcnow()
    outlets = np.resize(np.repeat(np.asarray(outlet_ids), PER_OUTLET), count).tolist()
    rows = (
        (i + 1, outlets[i], f"员工{i + 1}", "marketer", f"S{i + 1:07d}", "", "", True, now)
        for i in range(count)
    )
    columns = ("id", "outlet_id", "name", "role", "wecom_userid", "mobile", "contact_url")
    bulk_insert(session, "staff", (*columns, "active", "created_at"), rows)
    bulk_insert(
        session,
        "staff_stint",
        ("id", "staff_id", "outlet_id"),
        ((i + 1, i + 1, outlets[i]) for i in range(count)),
    )
    if session.get_bind().dialect.name == "postgresql":
        for table in ("staff", "staff_stint"):
            session.execute(sa.text(f"SELECT setval('{table}_id_seq', {count})"))
    return np.arange(1, count + 1, dtype=np.int64)


def _values(session: Session, staff_ids: np.ndarray, days: int, say) -> None:
    rng = np.random.default_rng(11)
    scale = rng.lognormal(0.0, 0.6, len(staff_ids))
    size = int(staff_ids.max()) + 1
    cum = np.zeros(size, dtype=np.int64)
    last = np.zeros(size, dtype=np.int32)
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres:
        session.execute(sa.text("DROP INDEX IF EXISTS ix_staff_metric_value_stint"))
    for j in range(days):
        day = END - timedelta(days=days - 1 - j)
        values = rng.poisson(scale * 1.2).astype(np.int64)
        if postgres:
            _copy_day(session, day, staff_ids, values)
        else:
            _insert_day(session, day, staff_ids, values)
        cum[staff_ids] += values
        last[staff_ids] = day.toordinal()
        series._save(session, "staff", KEY, series.State(day, cum, last), exists=False)
        if j % 30 == 0:
            session.commit()
            say(f"  day {j + 1}/{days}")
    if not postgres:
        say("  index (stint_id, date)…")
        session.execute(
            sa.text(
                "CREATE INDEX ix_staff_metric_value_stint ON staff_metric_value (stint_id, date)"
            )
        )
    session.commit()


def _insert_day(session: Session, day: date, ids: np.ndarray, values: np.ndarray) -> None:
    cursor = session.connection().connection.driver_connection.cursor()
    text = day.isoformat()
    id_list, value_list = ids.tolist(), values.tolist()
    cursor.executemany(
        "INSERT INTO staff_metric_value (metric_key, date, staff_id, stint_id, value) "
        "VALUES (?, ?, ?, ?, ?)",
        zip([KEY] * len(id_list), [text] * len(id_list), id_list, id_list, value_list, strict=True),
    )
    cursor.close()


def _copy_day(session: Session, day: date, ids: np.ndarray, values: np.ndarray) -> None:
    prefix = f"{KEY}\t{day.isoformat()}\t"
    buffer = io.StringIO()
    buffer.writelines(
        f"{prefix}{i}\t{i}\t{v}\n" for i, v in zip(ids.tolist(), values.tolist(), strict=True)
    )
    raw = session.connection().connection.driver_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY staff_metric_value (metric_key, date, staff_id, stint_id, value) FROM STDIN"
        ) as copy,
    ):
        copy.write(buffer.getvalue())


def _baseline(url: str, period: Period) -> None:
    sql = (
        "SELECT staff_id, SUM(value) AS v FROM staff_metric_value "
        "WHERE metric_key = :k AND date BETWEEN :s AND :e "
        "GROUP BY staff_id ORDER BY v DESC, staff_id LIMIT 100"
    )
    with get_engine(url).connect() as conn:
        rows = conn.execute(sa.text(sql), {"k": KEY, "s": period.start, "e": period.end}).all()
    assert len(rows) == 100


def _scopes(session: Session) -> dict[str, dict]:
    city, outlet = session.execute(
        sa.text("SELECT city_id, id FROM org_unit WHERE level = 'outlet' ORDER BY id DESC LIMIT 1")
    ).one()
    return {"province": {}, "city": {"city_id": city}, "outlet": {"outlet_id": outlet}}


def run(scale: str) -> list[Result]:
    staff, days = (200_000, 365) if scale == "full" else (20_000, 365)
    results: list[Result] = []
    actor = Actor(user_id=None, username="bench", display_name="bench", role=Role.ADMIN)
    for backend, url in _backends(scale):
        print(f"  {backend}: {staff:,} staff x {days} days = {staff * days:,} values", flush=True)
        build(url, staff, days, say=lambda m: print(m, flush=True))
        engine = get_engine(url)
        worst = 0.0
        with Session(engine) as session:
            scopes = _scopes(session)
            for label, length in (("1d", 1), ("30d", 30), ("365d", 365)):
                period = Period(END - timedelta(days=length - 1), END)
                for scope, kw in scopes.items():
                    query = StaffBoardQuery(KEY, period, top=100, **kw)
                    staff_leaderboard(session, actor=actor, query=query)  # warm the directory
                    ours, board = timed(
                        lambda q=query: staff_leaderboard(session, actor=actor, query=q), repeat=5
                    )
                    assert board.rows
                    worst = max(worst, ours)
                    base_value = None
                    if scope == "province" and label == "30d":
                        base, _ = timed(lambda p=period, u=url: _baseline(u, p), repeat=2)
                        base_value = round(base * 1000, 1)
                    results.append(
                        Result(
                            name=f"staff_board_{backend}_{scope}_{label}",
                            value=round(ours * 1000, 1),
                            unit="ms",
                            baseline=BASELINE if base_value else "",
                            baseline_value=base_value,
                            scale=scale,
                            notes=f"{staff * days:,} staff-day values; top 100 + rank change; "
                            f"{scope} scope ({board.staff_count:,} staff); goal < 150 ms",
                        )
                    )
        results.append(
            Result(
                f"staff_board_{backend}_worst",
                round(worst * 1000, 1),
                "ms",
                "",
                None,
                scale,
                "slowest of the 9 boards above (median of 5 each); goal < 150 ms",
            )
        )
        results.append(_memory(url, backend, scale))
    return results


_MEMORY_PROBE = """
import json, sys
from datetime import date, timedelta
from sqlmodel import Session
from core.platform.periods import Period
from core.platform.permissions import Actor
from core.metrics.staff_rankings import StaffBoardQuery, staff_leaderboard
from db.engine import get_engine
from db.models import Role
actor = Actor(user_id=None, username="bench", display_name="bench", role=Role.ADMIN)
end = date.fromisoformat(sys.argv[2])
with Session(get_engine(sys.argv[1])) as s:
    for days in (1, 30, 365):
        q = StaffBoardQuery("new_friends", Period(end - timedelta(days=days - 1), end))
        staff_leaderboard(s, actor=actor, query=q)
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps(peak_kib))
"""


def _memory(url: str, backend: str, scale: str) -> Result:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, url, str(END)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    mib = int(json.loads(out.stdout.strip().splitlines()[-1])) / 1024
    return Result(
        f"staff_board_process_rss_{backend}",
        round(mib, 1),
        "MiB",
        "",
        None,
        scale,
        "peak RSS of a process serving 3 province staff boards; goal < 1024",
    )
