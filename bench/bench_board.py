"""Outlet boards at national scale: `core.metrics.rankings.leaderboard` (top 100 with rank change
and the user's own rank, from the per-day snapshots) against a plain SQL GROUP BY over the
raw daily rows with a covering index, on SQLite and PostgreSQL, for a month and a year.
Also: the memory of a process serving boards, and the leaderboard page rendered by AppTest
at demo scale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from bench.common import DATA_DIR, Result, ensure_postgres_database, timed
from bench.national import END, build
from core.metrics.cities import city_ranking
from core.metrics.rankings import BoardQuery, leaderboard
from core.platform.periods import Period
from core.platform.permissions import Actor
from db.engine import get_engine
from db.models import Role

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/rds_bench")
BASELINE = "plain SQL GROUP BY over raw daily rows, covering index (date, outlet_id, new_friends)"


def _backends(scale: str) -> list[tuple[str, str]]:
    DATA_DIR.mkdir(exist_ok=True)
    backends = [("sqlite", f"sqlite:///{DATA_DIR / f'board-{scale}.db'}")]
    if ensure_postgres_database(PG_URL):
        backends.append(("postgresql", PG_URL))
    return backends


def _baseline(url: str, period: Period) -> None:
    sql = (
        "SELECT outlet_id, SUM(new_friends) AS v FROM daily_metric WHERE date BETWEEN :s AND :e "
        "GROUP BY outlet_id ORDER BY v DESC, outlet_id LIMIT 100"
    )
    with get_engine(url).connect() as conn:
        rows = conn.execute(sa.text(sql), {"s": period.start, "e": period.end}).all()
    assert len(rows) == 100


def run(scale: str) -> list[Result]:
    outlets, days = (50_000, 365) if scale == "full" else (5_000, 365)
    results: list[Result] = []
    for backend, url in _backends(scale):
        print(f"  {backend}: data set {outlets} outlets x {days} days")
        build(url, outlets, days, say=lambda m: print(m, flush=True))
        engine = get_engine(url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE INDEX IF NOT EXISTS ix_bench_cover ON daily_metric (date, outlet_id, new_friends)"
                )
            )
            conn.execute(sa.text("ANALYZE"))
        with Session(engine) as session:
            mine = session.execute(
                sa.text("SELECT max(id) FROM org_unit WHERE level = 'outlet'")
            ).scalar()
        actor = Actor(
            user_id=None,
            username="bench",
            display_name="bench",
            role=Role.ADMIN,
            outlet_id=int(mine),
        )
        rows = outlets * days
        for label, length, repeat_base in (("30d", 30, 3), ("365d", 365, 2)):
            period = Period(END - timedelta(days=length - 1), END)
            query = BoardQuery("new_friends", period, top=100)
            with Session(engine) as session:
                leaderboard(session, actor=actor, query=query)  # warm: directory, caches
                ours, board = timed(
                    lambda s=session, q=query, a=actor: leaderboard(s, actor=a, query=q), repeat=7
                )
            assert board.mine is not None and len(board.rows) == 100
            base, _ = timed(lambda p=period, u=url: _baseline(u, p), repeat=repeat_base)
            results.append(
                Result(
                    name=f"board_{backend}_{label}",
                    value=round(ours * 1000, 1),
                    unit="ms",
                    baseline=BASELINE,
                    baseline_value=round(base * 1000, 1),
                    scale=scale,
                    notes=f"{rows:,} daily rows; top 100 + rank change + own rank, province scope",
                )
            )
        with Session(engine) as session:
            city_time, _ = timed(
                lambda s=session, a=actor: city_ranking(
                    s, actor=a, metric="deposits", period=Period(END - timedelta(days=29), END)
                ),
                repeat=5,
            )
        results.append(
            Result(
                f"city_ranking_{backend}_30d",
                round(city_time * 1000, 1),
                "ms",
                "",
                None,
                scale,
                "14 cities, total and per-outlet average with rank change",
            )
        )
        results.append(_memory(url, backend, scale))
    results.append(_apptest(scale))
    return results


_MEMORY_PROBE = """
import json, sys
from datetime import date, timedelta
from sqlmodel import Session
from core.platform.periods import Period
from core.platform.permissions import Actor
from core.metrics.rankings import BoardQuery, city_ranking, leaderboard
from db.engine import get_engine
from db.models import Role
actor = Actor(user_id=None, username="bench", display_name="bench", role=Role.ADMIN)
end = date.fromisoformat(sys.argv[2])
with Session(get_engine(sys.argv[1])) as s:
    for metric in ("new_friends", "total_friends", "deposits"):
        for days in (1, 30, 365):
            leaderboard(s, actor=actor, query=BoardQuery(metric, Period(end - timedelta(days=days - 1), end)))
    city_ranking(s, actor=actor, metric="deposits", period=Period(end - timedelta(days=29), end))
# VmHWM, not ru_maxrss: the latter carries the parent's peak across fork/exec.
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
        f"board_process_rss_{backend}",
        round(mib, 1),
        "MiB",
        "",
        None,
        scale,
        "peak RSS of a process serving 9 boards and a city ranking; goal < 1024",
    )


_APPTEST_PROBE = """
import os, sys, time
from datetime import timedelta
from sqlmodel import Session
from streamlit.testing.v1 import AppTest
from core.platform import auth
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.migrate import upgrade_to_head
from core.demo.seed import seed_demo
url = os.environ["DATABASE_URL"]
upgrade_to_head(url)
with Session(get_engine(url)) as s:
    seed_demo(s, end_date=shanghai_today() - timedelta(days=1))
    token = auth.login(s, "reviewer1", "Demo2026").token
times = []
for _ in range(4):
    at = AppTest.from_file("Home.py", default_timeout=60)
    at.session_state["session_token"] = token
    at.run()
    at.switch_page("pages/leaderboard.py")
    start = time.perf_counter()
    at.run()
    times.append(time.perf_counter() - start)
    assert not at.exception, at.exception
print(sorted(times)[len(times) // 2])
"""


def _apptest(scale: str) -> Result:
    db = DATA_DIR / "apptest-demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "DEMO_MODE": "0"}
    out = subprocess.run(
        [sys.executable, "-c", _APPTEST_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = float(out.stdout.strip().splitlines()[-1])
    return Result(
        "leaderboard_page_apptest_demo",
        round(seconds, 3),
        "s",
        "",
        None,
        scale,
        "demo province (2,031 outlets x 365 days), province board, median of 4 renders; goal < 1.5 s",
    )
