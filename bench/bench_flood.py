"""Scans during a login flood: the real server (`streamlit run app.py`), ten threads (in a
process of their own) posting wrong passwords to /auth/login as fast as they can, and one
customer scanning a channel code (GET /c/{slug}, a new connection each) from another thread.
The baseline is the same scanner against the same server with no flood.

Measured twice per database: with the default per-address login limit (further attempts
refused before argon2, the answer held back a second), and with the limit lifted, which shows what the password checks
themselves cost (each argon2 check takes ~0.13 s and both cores) now that they run off the
event loop, one at a time, at low CPU priority, with no transaction open. Server CPU is read
from /proc (Linux).
"""

from __future__ import annotations

import http.client
import itertools
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from sqlmodel import Session, select

from bench.common import Result, cpu_seconds, ensure_postgres_database, scratch_sqlite
from core.channels.codes import CodeInput, create_code
from db.engine import get_engine
from db.migrate import empty_postgres_schema, upgrade_to_head
from db.models import ChannelType, OrgUnit, Role
from tests.e2e.app_server import AppProcess, running_apps
from tests.factories import make_staff, make_tree, make_user

PG_URL = os.environ.get(
    "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/rds_bench_flood"
)
FLOOD_THREADS = 10
GOAL_MS = 200


@dataclass(frozen=True)
class Phase:
    latencies_ms: list[float]
    attempts: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def p95(self) -> float:
        return round(statistics.quantiles(self.latencies_ms, n=20)[18], 1)

    @property
    def attempts_per_s(self) -> float:
        return round(self.attempts / self.seconds, 1) if self.seconds else 0.0

    @property
    def cpu_pct(self) -> float:
        """Server CPU as a share of one core (200 = both cores of this machine)."""
        return round(100 * self.cpu_seconds / self.seconds) if self.seconds else 0.0


def _fresh(backend: str) -> str:
    if backend == "sqlite":
        return scratch_sqlite("flood")
    empty_postgres_schema(PG_URL)
    upgrade_to_head(PG_URL)
    return PG_URL


def _world(url: str) -> str:
    """A manager to flood, and a round-robin code of two staff members; returns its slug."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        make_tree(session)
        make_user(session, "manager", Role.OUTLET_MANAGER, "O111")
        staff = tuple(make_staff(session, "O111", name) for name in ("张三", "李四"))
        outlet_id = session.exec(select(OrgUnit.id).where(OrgUnit.code == "O111")).one()
        code = create_code(
            session,
            actor=make_user(session, "designer", Role.DESIGNER),
            data=CodeInput(
                name="柜台码",
                channel_type=ChannelType.COUNTER,
                outlet_id=outlet_id,
                staff_ids=staff,
            ),
        )
    get_engine(url).dispose()
    return code.slug


def _scan_latencies(base: str, slug: str, seconds: float) -> list[float]:
    host, port = urlsplit(base).hostname, urlsplit(base).port
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        connection = http.client.HTTPConnection(host, port, timeout=60)  # new, like a phone
        connection.request("GET", f"/c/{slug}")
        status = connection.getresponse().status
        connection.close()
        latencies.append((time.perf_counter() - start) * 1000)
        if status != 302:
            raise RuntimeError(f"scan answered {status}")
        time.sleep(0.02)
    return latencies


def _flood_process(base: str, threads: int, stop: Event, attempts: Synchronized) -> None:
    """The attacker: its own process (so its threads do not hold the scanner's GIL)."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    headers = {"Origin": base, "Content-Type": "application/x-www-form-urlencoded"}

    def hammer() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        for n in itertools.count():
            if stop.is_set():
                return
            # Credential stuffing: a real account (locked after five) and names that are not.
            name = "manager" if n % 2 else f"user{threading.get_ident()}-{n}"
            body = urlencode({"username": name, "password": f"guess{n}"})
            connection.request("POST", "/auth/login", body=body, headers=headers)
            connection.getresponse().read()
            with attempts.get_lock():
                attempts.value += 1

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _phase(app: AppProcess, slug: str, seconds: float, *, flood: bool) -> Phase:
    spawn = multiprocessing.get_context("spawn")
    stop, attempts = spawn.Event(), spawn.Value("i", 0)
    attacker = spawn.Process(target=_flood_process, args=(app.base, FLOOD_THREADS, stop, attempts))
    if flood:
        attacker.start()
        time.sleep(2)  # let the flood build up first
    cpu, start, before = cpu_seconds(app.process.pid), time.monotonic(), attempts.value
    latencies = _scan_latencies(app.base, slug, seconds)
    phase = Phase(
        latencies,
        attempts=attempts.value - before,
        seconds=time.monotonic() - start,
        cpu_seconds=cpu_seconds(app.process.pid) - cpu,
    )
    stop.set()
    if flood:
        attacker.join(60)
    return phase


def _measure(backend: str, seconds: float) -> dict[str, Phase]:
    url = _fresh(backend)
    slug = _world(url)
    logs = Path(tempfile.mkdtemp(prefix="rds-flood-"))
    phases = {}
    for label, limit in (("limited", None), ("unlimited", "100000")):
        env = {"DEMO_MODE": "0", "LOGIN_ATTEMPTS_PER_MINUTE": limit}  # None: the default
        with running_apps(url, [logs / f"{label}.log"], env=env) as (app,):
            _scan_latencies(app.base, slug, 2)  # warm up
            if label == "limited":
                phases["quiet"] = _phase(app, slug, seconds, flood=False)
            phases[label] = _phase(app, slug, seconds, flood=True)
    return phases


def _results(backend: str, phases: dict[str, Phase], scale: str) -> list[Result]:
    quiet, limited, unlimited = phases["quiet"], phases["limited"], phases["unlimited"]
    baseline = f"scans with no flood (p95 of {len(quiet.latencies_ms)})"
    flood = f"{FLOOD_THREADS} threads posting wrong passwords (half for unknown names)"
    return [
        Result(
            name=f"flood_scan_p95_ms_{backend}",
            value=limited.p95,
            unit="ms",
            baseline=baseline,
            baseline_value=quiet.p95,
            scale=scale,
            notes=(
                f"{flood} ({limited.attempts_per_s}/s: beyond 20 a minute refused before "
                f"argon2, answered after 1 s), default LOGIN_ATTEMPTS_PER_MINUTE; "
                f"{len(limited.latencies_ms)} scans; goal < {GOAL_MS} ms"
            ),
        ),
        Result(
            name=f"flood_scan_p95_nolimit_ms_{backend}",
            value=unlimited.p95,
            unit="ms",
            baseline=baseline,
            baseline_value=quiet.p95,
            scale=scale,
            notes=(
                f"{flood} with the per-address limit lifted: every attempt hashed "
                f"({unlimited.attempts_per_s}/s), one at a time, low priority, off the event "
                f"loop, no transaction open; {len(unlimited.latencies_ms)} scans"
            ),
        ),
        Result(
            name=f"flood_server_cpu_pct_{backend}",
            value=limited.cpu_pct,
            unit="% of one core",
            baseline="the same flood with the per-address limit lifted",
            baseline_value=unlimited.cpu_pct,
            scale=scale,
            notes=(
                f"server process CPU during the flood (this machine: {os.cpu_count()} cores; "
                f"no flood: {quiet.cpu_pct} %)"
            ),
        ),
    ]


def run(scale: str) -> list[Result]:
    seconds = 30 if scale == "full" else 10
    backends = ["sqlite"] + (["postgresql"] if ensure_postgres_database(PG_URL) else [])
    results = []
    for backend in backends:
        results += _results(backend, _measure(backend, seconds), scale)
    return results
