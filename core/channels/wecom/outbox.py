"""The outbox of calls to WeCom: a row per call, written in the transaction of the change
that needs it (so nothing is lost and nothing is called inside a write), then run in the
background: claimed in one short transaction, called with no transaction open, finished in
another. Retryable failures (system busy, rate limits, network) come back later with a
growing pause; what still fails is kept as `failed` with WeCom's answer, on the admin page.

A few worker threads per app process (started from the st.App lifespan in live mode) drain
it side by side and are woken by the callback route; the scheduler's sweep drains whatever is left (for
instance after a restart). Several processes share the table safely: a claim is a lease.
"""

from __future__ import annotations

import logging
import threading
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
LOOPS = 2  # drain loops per process: a slow call (retrying) holds up only its own batch
CALL_THREADS = LOOPS * BATCH  # the calls wait on WeCom, not on the CPU
PERSONAL_FIELDS = ("external_userid", "welcome_code", "external_userids")


@dataclass
class Outcome:
    """What a handler did: a short Chinese result and payload changes to keep (progress
    through several steps, so a retry does not repeat what already succeeded)."""

    result: str
    payload: dict[str, Any] = field(default_factory=dict)


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


def claim(session: Session, *, now: datetime, limit: int = BATCH) -> list[WeComOutbox]:
    """Due rows (pending and due, or running with an expired lease), leased to us."""
    with write_transaction(session):
        query = (
            select(WeComOutbox)
            .where(
                sa.or_(
                    sa.and_(WeComOutbox.state == OutboxState.PENDING, WeComOutbox.next_at <= now),
                    sa.and_(
                        WeComOutbox.state == OutboxState.RUNNING,
                        WeComOutbox.lease_until < now,
                    ),
                )
            )
            .order_by(WeComOutbox.id)
            .limit(limit)
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
    except (WeComError, StepFailed) as exc:
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
) -> None:
    with write_transaction(session):
        for claimed, outcome, error in results:
            row = session.get(WeComOutbox, claimed.id)
            if row is None:
                continue
            if outcome is not None:
                row.state, row.result, row.error = OutboxState.DONE, outcome.result[:500], ""
                row.payload, row.finished_at = _scrub({**row.payload, **outcome.payload}), now
            else:
                if isinstance(error, StepFailed):
                    row.payload = {**row.payload, **error.payload}
                    error = error.error
                retry = isinstance(error, WeComError) and error.retryable
                row.error = str(error)[:500]
                if retry and row.attempts < MAX_ATTEMPTS:
                    row.state = OutboxState.PENDING
                    row.next_at = now + timedelta(seconds=min(5 * 2**row.attempts, 600))
                else:
                    row.state, row.finished_at = OutboxState.FAILED, now
                    row.payload = _scrub(row.payload)
                    log.warning("WeCom call %s #%s failed: %s", row.kind, row.id, row.error)
            row.lease_until = None
            session.add(row)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="wecom-call")
        return _pool


def drain_once(*, client: WeComClient | None = None, now: datetime | None = None) -> int:
    """Claim a batch, run its calls side by side, record the outcomes; how many ran."""
    client = client or WeComClient()
    with session_scope() as session:
        rows = claim(session, now=now or utcnow())
        if not rows:
            return 0
        results = list(_executor().map(lambda r: (r, *_run(client, r)), rows))
        _finish(session, results, utcnow())
    return len(rows)


def drain(*, client: WeComClient | None = None, rounds: int = 1000) -> int:
    """Run every due call (tests, the scheduler's sweep)."""
    total = 0
    for _ in range(rounds):
        ran = drain_once(client=client)
        total += ran
        if not ran:
            break
    return total


# --- the background worker ---------------------------------------------------------------


class OutboxWorker:
    """`LOOPS` threads that drain the outbox side by side as soon as they are woken, and at
    least every `idle` seconds."""

    def __init__(self, idle: float = 1.0) -> None:
        self.idle = idle
        self.woken = threading.Event()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._loop, name=f"wecom-outbox-{n}", daemon=True)
            for n in range(LOOPS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def is_alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                ran = drain_once()
            except Exception:
                log.exception("outbox drain failed")
                ran = 0
            if not ran:
                self.woken.wait(self.idle)
                self.woken.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.woken.set()

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
        _worker.woken.set()
