"""WeCom callbacks under load: the real server (`streamlit run app.py`) in live WeCom mode
(its calls to WeCom made by its worker process, as by default),
a loopback fake WeCom in a process of its own answering "system busy" (-1) to a tenth of
its calls, and signed, encrypted add_external_contact callbacks posted at a steady
200 per second (open loop: a late answer does not slow the sender) for 30 s (10 s at
--scale small).

Checked after the run: every callback answered 200, every add recorded exactly once, each
greeted (send_welcome_msg) and tagged (mark_tag) once in the fake despite the busy answers,
no outbox call failed; then the first 200 callbacks are replayed and nothing changes.

Also the greeting lag: from the moment a callback is sent to the moment the fake receives
its send_welcome_msg (WeCom keeps a WelcomeCode ~20 s; a welcome the app found too old is
counted as expired). The callbacks carry their send time as CreateTime, as WeCom's do.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from urllib.request import urlopen

import sqlalchemy as sa
from sqlmodel import Session, select

from bench.common import Result, cpu_seconds, ensure_postgres_database, scratch_sqlite
from core.channels.codes import CodeInput, create_code
from core.platform.settings import get_settings
from db.engine import get_engine
from db.migrate import empty_postgres_schema, upgrade_to_head
from db.models import ChannelEvent, ChannelType, EventType, OrgUnit, OutboxState, Role, WeComOutbox
from tests.e2e.app_server import running_apps
from tests.factories import make_staff, make_tree, make_user
from tests.wecom_fake import AES_KEY, CORP_ID, SECRET, TOKEN, FakeWeCom, add_event

PG_URL = os.environ.get(
    "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/rds_bench_wecom"
)
RATE = 200
BUSY = 0.1
GOAL_MS = 200
SENDERS = 64  # kept-alive connections
# The server's default (a worker process); WECOM_WORKER=thread python bench/run.py --only
# wecom measures the calls made from threads inside the server instead.
WORKER_MODE = os.environ.get("WECOM_WORKER", "process")


def _fake_process(port_out, stop) -> None:
    fake = FakeWeCom(busy_rate=BUSY).start()
    port_out.value = fake.port
    stop.wait()
    fake.stop()


def _fresh(backend: str) -> str:
    if backend == "sqlite":
        return scratch_sqlite("wecom")
    empty_postgres_schema(PG_URL)
    upgrade_to_head(PG_URL)
    return PG_URL


def _world(url: str, env: dict[str, str]) -> str:
    """Five staff at one outlet and one code (queued as a contact way): its slug."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        with Session(get_engine(url), expire_on_commit=False) as session:
            make_tree(session)
            staff = tuple(make_staff(session, "O111", f"员工{i}") for i in range(5))
            outlet_id = session.exec(select(OrgUnit.id).where(OrgUnit.code == "O111")).one()
            code = create_code(
                session,
                actor=make_user(session, "designer", Role.DESIGNER),
                data=CodeInput(
                    name="柜台码",
                    channel_type=ChannelType.COUNTER,
                    outlet_id=outlet_id,
                    staff_ids=staff,
                    tags=("网点柜台", "权益日"),
                ),
            )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    get_engine(url).dispose()
    return code.slug


async def _post_async(
    pool: asyncio.Queue, params: dict[str, str], body: bytes
) -> tuple[int, float]:
    """One callback over a kept-alive connection from the pool: (status, ms)."""
    reader, writer, host = await pool.get()
    start = time.perf_counter()
    try:
        head = (
            f"POST /wecom/callback?{urlencode(params)} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        status = int(status_line.split()[1])
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        status = 0
    ms = (time.perf_counter() - start) * 1000
    pool.put_nowait((reader, writer, host))
    return status, ms


async def _send_async(
    base: str, callbacks: list[tuple[dict, bytes]], start_at: float | None
) -> list[tuple[int, float]]:
    parts = urlsplit(base)
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(SENDERS):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        pool.put_nowait((reader, writer, parts.netloc))
    loop = asyncio.get_running_loop()
    start = loop.time() + (0.5 if start_at is None else max(start_at - time.time(), 0))
    tasks = []
    for i, (params, body) in enumerate(callbacks):
        delay = start + i / RATE - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_post_async(pool, params, body)))
    answers = await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return answers


def _send_all(
    base: str, callbacks: list[tuple[dict, bytes]], start_at: float | None = None
) -> list[tuple[int, float]]:
    """Open loop: callback i leaves at start + i / RATE, whatever came back before (an
    asyncio sender, so the measuring side adds as little delay as it can); start is
    `start_at` (time.time()) or half a second from now."""
    return asyncio.run(_send_async(base, callbacks, start_at))


def _outbox_open(url: str) -> int:
    with Session(get_engine(url)) as session:
        return session.execute(
            sa.select(sa.func.count())
            .select_from(WeComOutbox)
            .where(WeComOutbox.state.in_([OutboxState.PENDING, OutboxState.RUNNING]))
        ).scalar_one()


def _counts(url: str) -> dict[str, int]:
    with Session(get_engine(url)) as session:
        events = session.execute(
            sa.select(sa.func.count())
            .select_from(ChannelEvent)
            .where(ChannelEvent.event_type == EventType.ADD_FRIEND)
        ).scalar_one()
        states = dict(
            session.execute(
                sa.select(WeComOutbox.state, sa.func.count()).group_by(WeComOutbox.state)
            ).all()
        )
    return {"events": events, **{OutboxState(k).value: v for k, v in states.items()}}


def _worker_pid(server_pid: int) -> int | None:
    """The server's outbox worker process (WECOM_WORKER=process), if it runs one."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return int(children[0]) if children else None


def _cpu(pids: list[int | None]) -> list[float]:
    return [cpu_seconds(pid) if pid else 0.0 for pid in pids]


def _measure(backend: str, seconds: int) -> dict:
    spawn = multiprocessing.get_context("spawn")
    port, stop = spawn.Value("i", 0), spawn.Event()
    fake_proc = spawn.Process(target=_fake_process, args=(port, stop))
    fake_proc.start()
    while not port.value:
        time.sleep(0.05)
    api_base = f"http://127.0.0.1:{port.value}/cgi-bin"
    env = {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_SECRET": SECRET,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": api_base,
    }
    url = _fresh(backend)
    slug = _world(url, env)
    signer = FakeWeCom()  # only its crypto: callbacks are signed here, sent below
    total = RATE * seconds

    def adds(first: int, count: int, start_at: float) -> list[tuple[dict, bytes]]:
        """Callbacks first..first+count-1, stamped with the time each will be sent."""
        return [
            signer.callback(
                add_event(
                    state=slug,
                    userid=f"wx_O111_员工{i % 5}",
                    external=f"wmBench{i:06d}",
                    welcome_code=f"WC{i:06d}",
                    at=int(start_at + (i - first) / RATE),
                ),
                timestamp=int(start_at + (i - first) / RATE),
            )
            for i in range(first, first + count)
        ]

    logs = Path(tempfile.mkdtemp(prefix="rds-wecom-"))
    try:
        with running_apps(
            url, [logs / "app.log"], env={**env, "DEMO_MODE": "0", "WECOM_WORKER": WORKER_MODE}
        ) as (app,):
            warm_at = time.time() + 0.5
            warm = adds(0, 50, warm_at)
            _send_all(app.base, warm, warm_at)  # warm up (50 real adds, counted below)
            # signing 6000 callbacks takes a moment: they leave when it is done
            start_at = time.time() + 0.5 + total / 2000
            burst = adds(50, total - 50, start_at)
            sent_at = {f"WC{i:06d}": start_at + (i - 50) / RATE for i in range(50, total)}
            time.sleep(max(start_at - 0.05 - time.time(), 0))
            pids = [app.process.pid, _worker_pid(app.process.pid)]
            cpu, began = _cpu(pids), time.monotonic()
            answers = _send_all(app.base, burst, start_at)
            sent_for = time.monotonic() - began
            server_cpu, worker_cpu = (b - a for a, b in zip(cpu, _cpu(pids), strict=True))
            drain_start = time.monotonic()
            while _outbox_open(url) and time.monotonic() - drain_start < 300:
                time.sleep(0.5)
            drained = time.monotonic() - drain_start
            after = _counts(url)
            replays = _send_all(app.base, (warm + burst)[:RATE])
            time.sleep(2)
            replayed = _counts(url)
        stats = json.loads(urlopen(f"http://127.0.0.1:{port.value}/_fake/stats").read())
        welcomed = json.loads(urlopen(f"http://127.0.0.1:{port.value}/_fake/welcome_times").read())
    finally:
        stop.set()
        fake_proc.join(10)
    lags = [1000 * (welcomed[c] - t) for c, t in sent_at.items() if c in welcomed]
    latencies = [ms for _, ms in answers]
    return {
        "total": total,
        "ok": sum(1 for status, _ in answers + replays if status == 200),
        "answers": len(answers) + len(replays),
        "p95": round(statistics.quantiles(latencies, n=20)[18], 1),
        "p50": round(statistics.median(latencies), 1),
        "rate": round(len(answers) / sent_for, 1),
        "lag_p95": round(statistics.quantiles(lags, n=20)[18]) if len(lags) > 1 else None,
        "lag_p50": round(statistics.median(lags)) if lags else None,
        "lag_max": round(max(lags)) if lags else None,
        "greeted": len(lags),
        "cpu_pct": round(100 * server_cpu / sent_for),
        "worker_cpu_pct": round(100 * worker_cpu / sent_for) if pids[1] else None,
        "drained_s": round(drained, 1),
        "after": after,
        "replayed": replayed,
        "fake": stats,
    }


def _results(backend: str, m: dict, scale: str) -> list[Result]:
    fake, after = m["fake"], m["after"]
    exact = after["events"] == m["total"] and m["replayed"] == after
    return [
        Result(
            name=f"wecom_callback_p95_ms_{backend}",
            value=m["p95"],
            unit="ms",
            baseline="goal",
            baseline_value=GOAL_MS,
            scale=scale,
            notes=(
                f"{m['total'] - 50} add callbacks at {m['rate']}/s (open loop, asyncio sender, {SENDERS} connections), "
                f"p50 {m['p50']} ms; {m['ok']}/{m['answers']} answered 200; server CPU "
                f"{m['cpu_pct']} % of one core; calls to WeCom {_worker_note(m)}; "
                "ratio = goal / p95"
            ),
        ),
        Result(
            name=f"wecom_events_recorded_{backend}",
            value=after["events"],
            unit="events",
            baseline="callbacks sent (distinct adds)",
            baseline_value=m["total"],
            scale=scale,
            notes=(
                f"exactly once: {exact} (200 replays afterwards changed nothing: "
                f"{m['replayed'] == after}); greeted {fake['distinct_welcomes']} "
                f"(send_welcome_msg {fake['welcomes']}), tagged {fake['marks']}, tags created "
                f"{fake['tag_creations']}×"
            ),
        ),
        Result(
            name=f"wecom_greeting_lag_p95_ms_{backend}",
            value=m["lag_p95"] if m["lag_p95"] is not None else -1,
            unit="ms",
            baseline="WelcomeCode lifetime",
            baseline_value=20_000,
            scale=scale,
            notes=(
                f"callback sent → send_welcome_msg received by the fake, under the burst; "
                f"p50 {m['lag_p50']} ms, max {m['lag_max']} ms; greeted {m['greeted']} of "
                f"{m['total'] - 50}; expired (code too old, not sent) {after.get('expired', 0)}"
            ),
        ),
        Result(
            name=f"wecom_calls_failed_{backend}",
            value=after.get("failed", 0),
            unit="calls",
            baseline="calls done",
            baseline_value=after.get("done", 0),
            scale=scale,
            notes=(
                f"fake answered 'system busy' to {fake['busy_answers']} of {fake['calls']} "
                f"calls ({BUSY:.0%}); outbox empty {m['drained_s']} s after the last callback; "
                f"token fetched {fake['token_fetches']}×"
            ),
        ),
    ]


def _worker_note(m: dict) -> str:
    if m["worker_cpu_pct"] is None:
        return f"from the server process (WECOM_WORKER={WORKER_MODE})"
    return f"from its worker process ({m['worker_cpu_pct']} % of one core)"


def run(scale: str) -> list[Result]:
    seconds = 30 if scale == "full" else 10
    backends = ["sqlite"] + (["postgresql"] if ensure_postgres_database(PG_URL) else [])
    results = []
    for backend in backends:
        results += _results(backend, _measure(backend, seconds), scale)
    return results
