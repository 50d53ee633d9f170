"""WeCom's server callbacks (/wecom/callback): check and decrypt them, then turn each event
into channel events through the same `add_events` path as imports (idempotent by the
event's identity; the customer id stored hashed). Slow follow-ups (welcome message, tags)
are queued in the outbox, so the route answers well within WeCom's 5 seconds.

- A wrong signature, a wrong corp id or a timestamp more than 5 minutes off: refused
  (403) before anything is written.
- A replayed message (the same ciphertext again) is ignored; a re-delivered event with a
  new ciphertext is stored once anyway, by the event's identity.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from core.channels.events import NewEvent, add_event, hash_customer, store_events, welcome_text
from core.channels.wecom.crypto import (
    CallbackRefused,
    WeComCrypto,
    encrypted_field,
    parse_fields,
)
from core.channels.wecom.outbox import WELCOME
from core.channels.wecom_queue import GREET, enqueue_rows, live, outbox_row
from core.platform.cells import DateWindow
from core.platform.clock import utcnow
from core.platform.errors import ValidationFailed
from core.platform.settings import get_settings
from db.engine import is_postgres, session_scope, write_transaction
from db.models import ChannelCode, ChannelEvent, EventType, OrgUnit, Staff, WeComCallback

log = logging.getLogger(__name__)
ADD_TYPES = {"add_external_contact"}
LOSS_TYPES = {"del_external_contact": "员工删除了客户", "del_follow_user": "客户删除了员工"}
TRANSFER_FAIL_REASONS = {
    "customer_refused": "客户拒绝了继承",
    "customer_limit_exceed": "接替员工的客户数已达上限",
}


@dataclass(frozen=True)
class Refusal:
    at: datetime
    reason: str


# Refusals write nothing to the database (that is the point): the last one is kept per
# process for the admin page.
_refusals: dict[str, Refusal | int] = {"count": 0}
_refusal_lock = threading.Lock()


def last_refusal() -> tuple[Refusal | None, int]:
    with _refusal_lock:
        last = _refusals.get("last")
        return (last if isinstance(last, Refusal) else None), int(_refusals["count"])


def _refuse(reason: str) -> None:
    with _refusal_lock:
        _refusals["last"] = Refusal(utcnow(), reason)
        _refusals["count"] = int(_refusals["count"]) + 1


def crypto() -> WeComCrypto:
    s = get_settings()
    return WeComCrypto(s.wecom_token, s.wecom_aes_key, s.wecom_corp_id)


def verify_url(params: dict[str, str], *, now: float | None = None) -> str:
    """WeCom's URL check (GET with echostr): the decrypted echo."""
    try:
        return crypto().check(
            msg_signature=params.get("msg_signature", ""),
            timestamp=params.get("timestamp", ""),
            nonce=params.get("nonce", ""),
            encrypted=params.get("echostr", ""),
            now=now,
        )
    except CallbackRefused as exc:
        _refuse(f"URL 验证：{exc}")
        raise


@dataclass(frozen=True)
class Received:
    event: str
    outcome: str
    queued: bool  # calls to WeCom were queued (the outbox worker should wake)


def check(params: dict[str, str], body: bytes, *, now: float | None = None) -> tuple[dict, str]:
    """A POSTed callback's event fields and digest; CallbackRefused if it is not genuine
    and fresh (nothing is written then)."""
    try:
        encrypted = encrypted_field(body)
        message = crypto().check(
            msg_signature=params.get("msg_signature", ""),
            timestamp=params.get("timestamp", ""),
            nonce=params.get("nonce", ""),
            encrypted=encrypted,
            now=now,
        )
        fields = parse_fields(message)
    except CallbackRefused as exc:
        _refuse(str(exc))
        raise
    return fields, hashlib.sha256(encrypted.encode()).hexdigest()


def receive(params: dict[str, str], body: bytes, *, now: float | None = None) -> Received:
    """Check a POSTed callback and store it (in the caller's thread, one transaction)."""
    fields, digest = check(params, body, now=now)
    with session_scope() as session:
        return handle_event(session, fields, digest)


def event_name(fields: dict[str, str]) -> str:
    name = fields.get("Event", "")
    return f"{name}/{fields['ChangeType']}" if fields.get("ChangeType") else name


Item = tuple[dict[str, str], str]  # (event fields, digest of the ciphertext)


def handle_event(session: Session, fields: dict[str, str], digest: str) -> Received:
    return handle_events(session, [(fields, digest)])[0]


def handle_events(session: Session, items: list[Item]) -> list[Received]:
    """Store callbacks once each (by digest) and apply their events, all in one
    transaction: the callback writer groups the callbacks that arrive together, so a burst
    costs a few statements per batch rather than several per callback."""
    with write_transaction(session):
        fresh = _fresh(session, items)
        results = _friends_added(session, [(i, items[i][0]) for i in fresh if _is_add(items[i][0])])
        for i, (fields, _) in enumerate(items):
            if i in results:
                continue
            if i not in fresh:
                results[i] = Received(event_name(fields), "重复的回调，已忽略", False)
                continue
            try:
                with session.begin_nested():  # one bad event does not sink the batch
                    outcome, queued = _apply(session, fields)
            except ValidationFailed as exc:  # e.g. a time outside the window: kept, not applied
                outcome, queued = f"未记录：{exc}", False
            results[i] = Received(event_name(fields), outcome, queued)
        _remember(session, [(items[i], results[i]) for i in fresh])
        return [results[i] for i in range(len(items))]


def _is_add(fields: dict[str, str]) -> bool:
    return (
        fields.get("Event") == "change_external_contact"
        and fields.get("ChangeType", "") in ADD_TYPES
    )


def _fresh(session: Session, items: list[Item]) -> list[int]:
    """Indexes of the items whose ciphertext was not seen before (first occurrence only)."""
    digests = {digest for _, digest in items}
    seen = set(session.exec(select(WeComCallback.digest).where(WeComCallback.digest.in_(digests))))
    fresh = []
    for i, (_, digest) in enumerate(items):
        if digest not in seen:
            seen.add(digest)
            fresh.append(i)
    return fresh


def _remember(session: Session, done: list[tuple[Item, Received]]) -> None:
    """The callbacks handled, with their outcome: a replay of one is ignored from now on.
    (A replay racing in another process inserts nothing here; its events were stored once
    anyway, by their own identity.)"""
    if not done:
        return
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    now = utcnow()
    rows = [
        {
            "digest": digest,
            "event": received.event[:64],
            "outcome": received.outcome[:300],
            "staff_userid": fields.get("UserID", "")[:64],
            "received_at": now,
        }
        for (fields, digest), received in done
    ]
    session.execute(insert(WeComCallback.__table__).on_conflict_do_nothing(), rows)


def _friends_added(session: Session, adds: list[tuple[int, dict[str, str]]]) -> dict[int, Received]:
    """add_external_contact events, together: one query each for codes, staff and outlets,
    one INSERT for the events."""
    if not adds:
        return {}
    slugs = {f.get("State", "") for _, f in adds} - {""}
    codes = {
        c.slug: c for c in session.exec(select(ChannelCode).where(ChannelCode.slug.in_(slugs)))
    }
    userids = {f.get("UserID", "") for _, f in adds} - {""}
    staff = {
        s.wecom_userid: s
        for s in session.exec(select(Staff).where(Staff.wecom_userid.in_(userids)))
    }
    outlets = dict(
        session.exec(
            select(OrgUnit.id, OrgUnit.name).where(
                OrgUnit.id.in_({c.outlet_id for c in codes.values()})
            )
        ).all()
    )
    results: dict[int, Received] = {}
    events, pending = [], []
    window = DateWindow.current()
    for i, fields in adds:
        name, code = event_name(fields), codes.get(fields.get("State", ""))
        if code is None:
            results[i] = Received(name, "不是本系统活码带来的好友（State 未知）", False)
            continue
        moment = _moment(fields)
        if problem := window.moment_problem(moment):
            results[i] = Received(name, f"未记录：{problem}", False)
            continue
        person = staff.get(fields.get("UserID", ""))
        customer = hash_customer(fields.get("ExternalUserID", ""))
        events.append(
            NewEvent(
                code, _moment(fields), EventType.ADD_FRIEND, customer, person.id if person else None
            )
        )
        pending.append((i, fields, code, person, customer))
    new = store_events(session, events, "callback") if events else set()
    greeted: set[tuple[int, str]] = set()
    calls: list[dict] = []
    for i, fields, code, person, customer in pending:
        name = event_name(fields)
        if (code.id, customer, EventType.ADD_FRIEND) not in new or (code.id, customer) in greeted:
            results[i] = Received(name, "该好友事件已记录过", False)
            continue
        greeted.add((code.id, customer))
        if not live():
            results[i] = Received(name, f"已记录好友（活码「{code.name}」）", False)
            continue
        calls += _greeting_calls(fields, code, person, outlets.get(code.outlet_id, ""))
        results[i] = Received(name, f"已记录好友（活码「{code.name}」），欢迎语与标签已排队", True)
    enqueue_rows(session, calls)
    return results


def _greeting_calls(
    fields: dict[str, str], code: ChannelCode, person: Staff | None, outlet: str
) -> list[dict]:
    """Two calls: the welcome message in its own, time-critical lane (only with a
    WelcomeCode and a text), and the tags in the ordinary one."""
    external = fields.get("ExternalUserID", "")
    calls = []
    if fields.get("WelcomeCode") and code.welcome_message:
        welcome = {
            "external_userid": external,
            "welcome_code": fields["WelcomeCode"],
            "issued_at": _issued_at(fields),
            # outlet and staff filled now; the customer's name when the call runs
            "welcome": welcome_text(
                code.welcome_message,
                nickname="{客户昵称}",
                outlet=outlet,
                staff=person.name if person else "",
            ),
        }
        calls.append(outbox_row(WELCOME, welcome, code_id=code.id))
    if code.tags:
        tags = {
            "userid": fields.get("UserID", ""),
            "external_userid": external,
            "tags": list(code.tags),
        }
        calls.append(outbox_row(GREET, tags, code_id=code.id))
    return calls


def _issued_at(fields: dict[str, str]) -> float:
    """When WeCom issued the WelcomeCode: the event's CreateTime, but never later than now
    (a clock ahead of ours must not lend the code extra life)."""
    now = time.time()
    try:
        return min(float(fields.get("CreateTime", "")), now)
    except ValueError:
        return now


def _moment(fields: dict[str, str]) -> datetime:
    try:
        return datetime.fromtimestamp(int(fields.get("CreateTime", "")), tz=UTC)
    except ValueError:
        return utcnow()


def _apply(session: Session, fields: dict[str, str]) -> tuple[str, bool]:
    event, change = fields.get("Event", ""), fields.get("ChangeType", "")
    if event == "change_external_contact" and change in LOSS_TYPES:
        return _lost(session, fields, LOSS_TYPES[change]), False
    if event == "change_external_contact" and change == "transfer_fail":
        reason = fields.get("FailReason", "")
        return f"继承失败：{TRANSFER_FAIL_REASONS.get(reason, reason or '未说明原因')}", False
    if event == "change_external_chat" and fields.get("UpdateDetail") == "add_member":
        return _joined(session, fields), False
    return "未处理的事件类型", False


def _staff(session: Session, userid: str) -> Staff | None:
    if not userid:
        return None
    return session.exec(select(Staff).where(Staff.wecom_userid == userid)).first()


def _source_code(session: Session, customer: str, staff_id: int | None) -> ChannelCode | None:
    """The code that brought this customer in (their newest friend event)."""
    query = select(ChannelEvent.code_id).where(
        ChannelEvent.customer == customer, ChannelEvent.event_type == EventType.ADD_FRIEND
    )
    if staff_id is not None:
        query = query.where(ChannelEvent.staff_id == staff_id)
    code_id = session.exec(query.order_by(ChannelEvent.at.desc()).limit(1)).first()
    return session.get(ChannelCode, code_id) if code_id else None


def _lost(session: Session, fields: dict[str, str], why: str) -> str:
    staff = _staff(session, fields.get("UserID", ""))
    customer = hash_customer(fields.get("ExternalUserID", ""))
    code = _source_code(session, customer, staff.id if staff else None)
    if code is None:
        return f"{why}（不是活码带来的客户）"
    recorded = add_event(
        session,
        code,
        _moment(fields),
        EventType.LOSS,
        customer,
        staff.id if staff else None,
        "callback",
    )
    return f"{why}，计入活码「{code.name}」的流失" if recorded else "该流失事件已记录过"


def _joined(session: Session, fields: dict[str, str]) -> str:
    members = [m for m in fields.get("MemChangeList", "").split(",") if m]
    joined = 0
    for member in members[:500]:
        customer = hash_customer(member)
        code = _source_code(session, customer, None)
        if code is not None:
            joined += add_event(
                session, code, _moment(fields), EventType.JOIN_GROUP, customer, None, "callback"
            )
    scene = fields.get("JoinScene", "")
    return f"{len(members)} 人入群（方式 {scene or '未知'}），其中 {joined} 位来自活码"


# --- the callback writer -------------------------------------------------------------------


class CallbackWriter:
    """A thread that stores the callbacks arriving together in one transaction (group
    commit). One per process, on PostgreSQL too: every add for a code bumps that code's
    friend count, so several writers would queue on the same row lock, and while one
    commits the next batch simply grows (a batch of 16 costs about twice a batch of 1).
    Measured with bench_wecom: three writers gave p95 230-420 ms at 200/s, one 115 ms.
    Each request gets its answer only after its event is committed, so a callback answered
    200 is never lost; WeCom re-sends unanswered ones."""

    GATHER_SECONDS = 0.005
    MAX_BATCH = 500

    def __init__(self, threads: int = 1) -> None:
        # queue.Queue, not SimpleQueue: with several consumers, SimpleQueue.get(timeout=...)
        # was seen to block for good (a writer stuck holding a batch whose requests never got
        # an answer, once in ~10 runs of bench_wecom on PostgreSQL).
        self.inbox: queue.Queue[tuple[Item, Future]] = queue.Queue()
        self.threads = [
            threading.Thread(target=self.run, name=f"wecom-callbacks-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def is_alive(self) -> bool:
        return all(thread.is_alive() for thread in self.threads)

    def submit(self, fields: dict[str, str], digest: str) -> Future:
        future: Future = Future()
        self.inbox.put(((fields, digest), future))
        return future

    def run(self) -> None:
        while True:
            batch = [self.inbox.get()]
            deadline = time.monotonic() + self.GATHER_SECONDS
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self.inbox.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[tuple[Item, Future]]) -> None:
        # A request that stopped waiting (it answered 503 and WeCom will re-send) is not
        # written; from here on the others can no longer be cancelled.
        batch = [(item, future) for item, future in batch if future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            with session_scope() as session:
                answers = handle_events(session, [item for item, _ in batch])
        except Exception:
            log.exception("callback batch failed; storing its %d callbacks one by one", len(batch))
            for item, future in batch:
                try:
                    with session_scope() as session:
                        future.set_result(handle_event(session, *item))
                except Exception as exc:
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            future.set_result(answer)


_writer: CallbackWriter | None = None
_writer_lock = threading.Lock()


def writer() -> CallbackWriter:
    global _writer
    with _writer_lock:
        if _writer is None or not _writer.is_alive():
            _writer = CallbackWriter()
            _writer.start()
        return _writer
