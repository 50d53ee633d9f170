"""The outbox of calls to WeCom: a row per call, written in the transaction of the change
that needs it (so nothing is lost and nothing is called inside a write), then run in the
background: claimed in one short transaction, called with no transaction open, finished in
another. Retryable failures (system busy, rate limits, network) come back later with a
growing pause; what still fails is kept as `failed` with WeCom's answer, on the admin page.

A few worker threads per app process (started from the st.App lifespan in live mode) drain
it side by side and are woken by the callback route; the scheduler's sweep drains whatever is left (for
instance after a restart). Several processes share the table safely: a claim is a lease.

Two lanes: welcome messages are time-critical (WeCom keeps a WelcomeCode ~20 s), so they
have threads, call threads and a short retry pause of their own, and are never queued
behind tag, contact-way or transfer calls; the other lane gives way while a burst of
welcomes is being sent. A welcome whose code is too old is not attempted but kept as
`expired`, shown with the failures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from core.channels.wecom.client import WeComClient, WeComError
from core.channels.wecom_queue import CONTACT_WAY
from core.platform.clock import utcnow
from db.engine import is_postgres, session_scope, write_transaction
from db.models import OutboxState, WeComOutbox, WeComStatus

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 6
BATCH = 16
PERSONAL_FIELDS = ("external_userid", "welcome_code", "external_userids")
WELCOME = "welcome"  # send_welcome_msg alone: its own lane
# WeCom keeps a WelcomeCode for 20 s; one older than this is not worth a call any more
# (the call itself, and a retry after a busy answer, take part of what is left).
WELCOME_TTL = timedelta(seconds=18)


@dataclass(frozen=True)
class Lane:
    """A share of the outbox with its own drain loops and call threads: `kinds` are the
    calls it runs (None: every kind not in a lane of its own)."""

    name: str
    kinds: frozenset[str] | None
    loops: int  # a slow call (retrying) holds up only its own loop's batch
    batch: int
    first_pause: float  # seconds before the first retry, doubled each time
    max_pause: float

    @property
    def call_threads(self) -> int:  # the calls wait on WeCom, not on the CPU
        return self.loops * self.batch

    def pause(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.first_pause * 2 ** (attempts - 1), self.max_pause))


# Two loops of 32: one loop of 16 left the greetings of a 200/s burst ~10 s behind.
WELCOME_LANE = Lane(
    "welcome", frozenset({WELCOME}), loops=2, batch=32, first_pause=0.5, max_pause=4
)
OTHER_LANE = Lane("other", None, loops=2, batch=BATCH, first_pause=10, max_pause=600)
LANES = (WELCOME_LANE, OTHER_LANE)
PRIORITY = frozenset({WELCOME})  # kinds the other lane never runs


@dataclass
class Outcome:
    """What a handler did: a short Chinese result and payload changes to keep (progress
    through several steps, so a retry does not repeat what already succeeded)."""

    result: str
    payload: dict[str, Any] = field(default_factory=dict)


class Expired(Exception):
    """The call came too late to be made (a WelcomeCode that has run out)."""


class StepFailed(Exception):
    """A handler failed part-way: keep its progress (payload) for the retry."""

    def __init__(self, error: WeComError, payload: dict[str, Any]) -> None:
        super().__init__(str(error))
        self.error, self.payload = error, payload


Handler = Callable[[WeComClient, WeComOutbox], Outcome]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


# --- status (the admin page's "last token fetch") ------------------------------------------


def record_status(kind: str, ok: bool, detail: str) -> None:
    """Its own short transaction: called outside any other."""
    with session_scope() as session, write_transaction(session):
        row = session.get(WeComStatus, kind) or WeComStatus(kind=kind)
        row.ok, row.detail, row.at = ok, detail[:300], utcnow()
        session.add(row)


# --- claim, run, finish ------------------------------------------------------------------


def claim(
    session: Session, *, now: datetime, lane: Lane = OTHER_LANE, limit: int | None = None
) -> list[WeComOutbox]:
    """The lane's due rows (pending and due, or running with an expired lease), leased to
    us, oldest first."""
    kinds = (
        WeComOutbox.kind.in_(lane.kinds)
        if lane.kinds is not None
        else WeComOutbox.kind.not_in(PRIORITY)
    )
    with write_transaction(session):
        query = (
            select(WeComOutbox)
            .where(
                kinds,
                sa.or_(
                    sa.and_(WeComOutbox.state == OutboxState.PENDING, WeComOutbox.next_at <= now),
                    sa.and_(
                        WeComOutbox.state == OutboxState.RUNNING,
                        WeComOutbox.lease_until < now,
                    ),
                ),
            )
            .order_by(WeComOutbox.id)
            .limit(limit or lane.batch)
        )
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        rows, seen = [], set()
        for row in session.exec(query):
            # One contact-way call per code at a time: two would both create one.
            if row.kind == CONTACT_WAY and row.code_id in seen:
                continue
            if row.kind == CONTACT_WAY:
                seen.add(row.code_id)
            rows.append(row)
        for row in rows:
            row.state, row.lease_until = OutboxState.RUNNING, now + LEASE
            row.attempts += 1
            session.add(row)
    return rows


def _run(client: WeComClient, row: WeComOutbox) -> tuple[Outcome | None, Exception | None]:
    fn = HANDLERS.get(row.kind)
    if fn is None:
        return None, WeComError(-3, f"unknown outbox kind {row.kind}")
    try:
        return fn(client, row), None
    except (WeComError, StepFailed, Expired) as exc:
        return None, exc
    except Exception as exc:  # a bug must not stop the other calls; it is recorded
        log.exception("outbox %s %s failed", row.kind, row.id)
        return None, exc


def _scrub(payload: dict[str, Any]) -> dict[str, Any]:
    """Raw WeCom customer ids are kept only while a call needs them."""
    return {k: v for k, v in payload.items() if k not in PERSONAL_FIELDS}


def _finish(
    session: Session,
    results: list[tuple[WeComOutbox, Outcome | None, Exception | None]],
    now: datetime,
    lane: Lane = OTHER_LANE,
) -> None:
    with write_transaction(session):
        for claimed, outcome, error in results:
            row = session.get(WeComOutbox, claimed.id)
            if row is None:
                continue
            if outcome is not None:
                row.state, row.result, row.error = OutboxState.DONE, outcome.result[:500], ""
                row.payload, row.finished_at = _scrub({**row.payload, **outcome.payload}), now
            elif isinstance(error, Expired):
                row.state, row.error, row.finished_at = OutboxState.EXPIRED, str(error)[:500], now
                row.payload = _scrub(row.payload)
                log.warning("WeCom call %s #%s not made: %s", row.kind, row.id, row.error)
            else:
                if isinstance(error, StepFailed):
                    row.payload = {**row.payload, **error.payload}
                    error = error.error
                retry = isinstance(error, WeComError) and error.retryable
                row.error = str(error)[:500]
                if retry and row.attempts < MAX_ATTEMPTS:
                    row.state = OutboxState.PENDING
                    row.next_at = now + lane.pause(row.attempts)
                else:
                    row.state, row.finished_at = OutboxState.FAILED, now
                    row.payload = _scrub(row.payload)
                    log.warning("WeCom call %s #%s failed: %s", row.kind, row.id, row.error)
            row.lease_until = None
            session.add(row)


_pools: dict[str, ThreadPoolExecutor] = {}
_pool_lock = threading.Lock()


def _executor(lane: Lane) -> ThreadPoolExecutor:
    """Call threads per lane: welcomes never wait for a thread a tag call holds."""
    with _pool_lock:
        if lane.name not in _pools:
            _pools[lane.name] = ThreadPoolExecutor(
                lane.call_threads, thread_name_prefix=f"wecom-{lane.name}"
            )
        return _pools[lane.name]


def drain_once(
    *, client: WeComClient | None = None, now: datetime | None = None, lane: Lane = OTHER_LANE
) -> int:
    """Claim a batch of the lane, run its calls side by side, record the outcomes; how
    many ran."""
    client = client or WeComClient()
    with session_scope() as session:
        rows = claim(session, now=now or utcnow(), lane=lane)
        if not rows:
            return 0
        results = list(_executor(lane).map(lambda r: (r, *_run(client, r)), rows))
        _finish(session, results, utcnow(), lane)
    return len(rows)


def drain(*, client: WeComClient | None = None, rounds: int = 1000) -> int:
    """Run every due call (tests, the scheduler's sweep), welcomes first."""
    total = 0
    for lane in LANES:
        for _ in range(rounds):
            ran = drain_once(client=client, lane=lane)
            total += ran
            if not ran:
                break
    return total


# --- the background worker ---------------------------------------------------------------


class OutboxWorker:
    """Each lane's loops drain it side by side as soon as they are woken, and at least
    every `idle` seconds. The other lane gives way (up to `YIELD_SECONDS`) while welcomes
    are being sent: they share the process's CPU."""

    YIELD_SECONDS = 2.0

    def __init__(self, idle: float = 1.0) -> None:
        self.idle = idle
        self.woken = {lane.name: threading.Event() for lane in LANES}
        self.stopping = threading.Event()
        self.welcomes_at = 0.0  # time.monotonic() when a welcome batch last ran
        self.threads = [
            threading.Thread(
                target=self._loop, args=(lane,), name=f"wecom-{lane.name}-{n}", daemon=True
            )
            for lane in LANES
            for n in range(lane.loops)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def is_alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def _loop(self, lane: Lane) -> None:
        woken = self.woken[lane.name]
        while not self.stopping.is_set():
            if lane is not WELCOME_LANE:
                self._give_way()
            try:
                ran = drain_once(lane=lane)
            except Exception:
                log.exception("outbox drain (%s) failed", lane.name)
                ran = 0
            if lane is WELCOME_LANE and ran:
                self.welcomes_at = time.monotonic()
            if not ran:
                woken.wait(self.idle)
                woken.clear()

    def _give_way(self) -> None:
        """Wait while welcomes were sent in the last moment, but not longer than
        YIELD_SECONDS: the other calls are late, never starved."""
        began = time.monotonic()
        while (
            time.monotonic() - self.welcomes_at < 0.2
            and time.monotonic() - began < self.YIELD_SECONDS
            and not self.stopping.is_set()
        ):
            time.sleep(0.05)

    def wake(self) -> None:
        for event in self.woken.values():
            event.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)


_worker: OutboxWorker | None = None


def start_worker() -> OutboxWorker:
    global _worker
    if _worker is None or not _worker.is_alive():
        _worker = OutboxWorker()
        _worker.start()
    return _worker


def stop_worker() -> None:
    global _worker
    if _worker is not None:
        _worker.stop()
        _worker.join(5)
        _worker = None


def wake() -> None:
    """New calls were queued: the worker (if this process runs one) starts now."""
    if _worker is not None:
        _worker.wake()
