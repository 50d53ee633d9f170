"""Many outlet managers at once: `python bench/load.py [--users 5 10 25 50] [--seconds 30]`.

Serves the demo province with one `streamlit run app.py` process and drives it through
Streamlit's own websocket protocol (/_stcore/stream, protobuf BackMsg / ForwardMsg), as the
browser does: N simulated managers, each its own session logged in with its own cookie and
its own outlet, rerun a page, wait for the run to finish, think for 1 s, and go again. A run
is timed from the rerun request to the server's "script finished" message. Reports the p95
per N and page, runs per second, server CPU per run and bytes sent per run, as
`load_<page>_<N>_users` in bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Result  # noqa: E402
from bench.pages import PageResult, p95, write  # noqa: E402

PAGES = {"board": "board", "home": "home"}
THINK_S = 1.0
GOAL_S = 2.0
USERS_PREFIX = "load_manager_"


@dataclass
class Tally:
    seconds: list[float] = field(default_factory=list)
    sent_bytes: list[int] = field(default_factory=list)
    errors: int = 0


def _database(users: int) -> tuple[str, list[str]]:
    """The demo province plus `users` outlet managers spread over the outlets; returns the
    URL and each manager's session token."""
    from sqlmodel import Session, select

    from core.demo.seed import seed_demo
    from core.platform import auth
    from core.platform.clock import shanghai_today
    from db.engine import get_engine
    from db.migrate import upgrade_to_head
    from db.models import OrgLevel, OrgUnit, Role, User

    url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'load.db'}"
    upgrade_to_head(url)
    with Session(get_engine(url)) as session:
        seed_demo(session, end_date=shanghai_today() - timedelta(days=1))
        outlets = session.exec(
            select(OrgUnit.id).where(OrgUnit.level == OrgLevel.OUTLET).order_by(OrgUnit.code)
        ).all()
        secret = auth.hash_password("Load2026!")
        step = max(1, len(outlets) // users)
        for i in range(users):
            session.add(
                User(
                    username=f"{USERS_PREFIX}{i:03d}",
                    display_name=f"网点负责人{i}",
                    role=Role.OUTLET_MANAGER,
                    org_id=outlets[(i * step) % len(outlets)],
                    password_hash=secret,
                )
            )
        session.commit()
        tokens = [
            auth.login(session, f"{USERS_PREFIX}{i:03d}", "Load2026!").token for i in range(users)
        ]
    get_engine(url).dispose()
    return url, tokens


def _rerun(page: str) -> bytes:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    message = BackMsg()
    message.rerun_script.query_string = ""
    message.rerun_script.page_name = page
    message.rerun_script.context_info.timezone = "Asia/Shanghai"
    message.rerun_script.context_info.locale = "zh-CN"
    return message.SerializeToString()


async def _run_once(ws, request: bytes) -> tuple[float, int]:
    """Send one rerun; (seconds until the run finished, bytes received)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    started = time.perf_counter()
    await ws.send(request)
    received = 0
    while True:
        data = await ws.recv()
        received += len(data)
        message = ForwardMsg.FromString(data)
        if message.WhichOneof("type") == "script_finished":
            if message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                return time.perf_counter() - started, received
            if message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                raise RuntimeError(f"run ended with {message.script_finished}")


@dataclass
class Phase:
    """All sessions connect and finish their first run (imports, caches) before the clock
    starts; then each reruns until `until`."""

    ready: int = 0
    go: asyncio.Event = field(default_factory=asyncio.Event)
    until: float = 0.0


async def _manager(base: str, token: str, page: str, phase: Phase, tally: Tally) -> None:
    from websockets.asyncio.client import connect

    from ui.widgets import SESSION_COOKIE

    uri = base.replace("http://", "ws://") + "/_stcore/stream"
    request = _rerun(page)
    async with connect(
        uri,
        subprotocols=["streamlit"],
        additional_headers={"Cookie": f"{SESSION_COOKIE}={token}", "Origin": base},
        max_size=None,
        open_timeout=120,
        ping_timeout=None,
    ) as ws:
        await _run_once(ws, request)
        phase.ready += 1
        await phase.go.wait()
        while time.monotonic() < phase.until:
            try:
                seconds, received = await _run_once(ws, request)
            except Exception:
                tally.errors += 1
                return
            tally.seconds.append(seconds)
            tally.sent_bytes.append(received)
            await asyncio.sleep(THINK_S)


def _server_cpu(pid: int) -> float:
    """User + system CPU seconds of the server process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(
    base: str, pid: int, tokens: list[str], page: str, seconds: float
) -> tuple[Tally, float, float]:
    """(tally, wall seconds, server CPU seconds) of the measured phase."""
    tally, phase = Tally(), Phase()
    tasks = [asyncio.create_task(_manager(base, t, page, phase, tally)) for t in tokens]
    while phase.ready < len(tokens):
        if any(t.done() for t in tasks):
            await asyncio.gather(*tasks)  # raises what went wrong
        await asyncio.sleep(0.05)
    cpu, started = _server_cpu(pid), time.monotonic()
    phase.until = started + seconds
    phase.go.set()
    await asyncio.gather(*tasks)
    return tally, time.monotonic() - started, _server_cpu(pid) - cpu


def measure(counts: list[int], seconds: float, pages: list[str]) -> list[Result]:
    from tests.e2e.app_server import running_apps

    url, tokens = _database(max(counts))
    log = Path(tempfile.mkdtemp()) / "server.log"
    results: list[Result] = []
    with running_apps(url, [log]) as apps:
        app = apps[0]
        for page in pages:
            for n in counts:
                tally, wall, cpu = asyncio.run(
                    _load(app.base, app.process.pid, tokens[:n], PAGES[page], seconds)
                )
                runs = len(tally.seconds)
                if not runs:
                    print(f"  {page} {n}: no completed runs ({tally.errors} errors)")
                    continue
                high, median = p95(tally.seconds), statistics.median(tally.seconds)
                kb = statistics.mean(tally.sent_bytes) / 1024
                cpu_ms = 1000 * cpu / runs
                note = (
                    f"median {median:.3f} s, {runs / wall:.1f} runs/s, ~{cpu_ms:.0f} ms server CPU"
                    f" per run, {kb:.0f} KB per run, {tally.errors} errors, {seconds:.0f} s,"
                    f" 1 s think time, one process, machine load average {os.getloadavg()[0]:.1f}"
                    f" on {os.cpu_count()} CPUs"
                )
                print(f"  {page} {n:>3} users: p95 {high:.3f} s · {note}", flush=True)
                results.append(
                    PageResult(
                        f"load_{page}_{n}_users",
                        round(high, 3),
                        "s (p95)",
                        f"goal p95 < {GOAL_S} s at 50 users",
                        GOAL_S,
                        "demo",
                        note,
                        median=round(median, 3),
                        p95=round(high, 3),
                    )
                )
    return results


def run(scale: str) -> list[Result]:
    """For bench/run.py: 5, 10, 25 and 50 managers on the board and the home page."""
    return measure([5, 10, 25, 50], 30 if scale == "full" else 20, list(PAGES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[5, 10, 25, 50])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--page", choices=sorted(PAGES), action="append")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    fresh = measure(args.users, args.seconds, args.page or list(PAGES))
    if not args.no_write:
        write(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
