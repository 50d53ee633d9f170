"""Channel events (渠道事件): a scan answered (pick the staff member, count it, redirect),
and the events that follow (friend added, group joined, conversion, loss), stored once
each whether they come from a file import or a live callback."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from core.channels.assignment import PoolMember, pick_staff
from core.channels.codes import code_pool, code_problem
from core.platform.cells import DateWindow
from core.platform.clock import SHANGHAI, utcnow
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.settings import get_settings
from db.engine import is_postgres, write_transaction
from db.models import (
    ChannelCode,
    ChannelCodeStaff,
    ChannelEvent,
    EventType,
    OrgUnit,
    Staff,
)


def hash_customer(external_id: str) -> str:
    """WeCom external ids are personal data: only a salted hash is ever stored."""
    salt = get_settings().customer_salt
    return hashlib.sha256(f"{salt}:{external_id.strip()}".encode()).hexdigest()


@dataclass(frozen=True)
class ScanAnswer:
    status: int  # 302 to the staff member, 404 unknown code, 410 code that cannot work
    location: str = ""
    message: str = ""
    staff_id: int | None = None


def scan(
    session: Session, slug: str, *, now: datetime | None = None, record: bool = True
) -> ScanAnswer:
    """A customer scanned the QR: record it, pick the staff member, say where to go.

    With `record=False` (an HTTP HEAD: link checkers, chat-app previews) the answer is the
    same as a scan's would be at that moment, but nothing is counted or written.
    """
    now = now or utcnow()
    if not record:
        try:
            return _scan_decision(session, slug, now, lock=False)[0]
        finally:
            session.rollback()  # only read; end the read transaction
    with write_transaction(session):
        answer, pick = _scan_decision(session, slug, now, lock=True)
        if pick is not None:
            _record_scan(session, pick, now)
        return answer


@dataclass(frozen=True)
class _ScanPick:
    code: ChannelCode
    link: ChannelCodeStaff
    staff: Staff
    cursor: int


def _scan_decision(
    session: Session, slug: str, now: datetime, *, lock: bool
) -> tuple[ScanAnswer, _ScanPick | None]:
    moment = now.astimezone(SHANGHAI)
    query = select(ChannelCode).where(ChannelCode.slug == slug)
    if lock and is_postgres(session):
        # One pick at a time per code, and the row read after the lock: a cursor or count
        # read before it may be stale by the time it is written (scans run side by side in
        # worker threads and in several app processes).
        query = query.with_for_update().execution_options(populate_existing=True)
    code = session.exec(query).first()
    if code is None:
        return ScanAnswer(404, message="这个二维码不存在，请向网点工作人员索取最新的二维码。"), None
    pool = code_pool(session, code)
    problem = code_problem(code, pool, moment.date())
    if problem or (code.active_from and code.active_from > moment.date()):
        return ScanAnswer(
            410,
            message=f"这个二维码已失效（{problem or '活动尚未开始'}），请向网点工作人员索取最新的二维码。",
        ), None
    members = [
        PoolMember(
            s.id,
            m.position,
            s.active,
            m.fallback,
            m.assigned_total,
            m.assigned_today if m.today == moment.date() else 0,
        )
        for m, s in pool
    ]
    pick = pick_staff(
        code.rule,
        members,
        moment=moment.replace(tzinfo=None),
        cursor=code.cursor,
        daily_cap=code.daily_cap,
        slots=code.slots,
    )
    if pick.staff_id is None:
        return ScanAnswer(
            410, message=f"暂时无人接待（{pick.reason}），请稍后再试或到网点咨询。"
        ), None
    link, staff = next((m, s) for m, s in pool if s.id == pick.staff_id)
    # Live WeCom: the code's own contact way (its QR page adds the customer with the
    # code's state); otherwise the staff member's hand-typed contact link.
    location = code.wecom_qr_url or staff.contact_url or f"{get_settings().base_url}/"
    answer = ScanAnswer(302, location=location, staff_id=staff.id)
    return answer, _ScanPick(code, link, staff, pick.cursor)


def _record_scan(session: Session, pick: _ScanPick, now: datetime) -> None:
    today = now.astimezone(SHANGHAI).date()
    link, code = pick.link, pick.code
    link.assigned_today = (link.assigned_today if link.today == today else 0) + 1
    link.assigned_total += 1
    link.today = today
    code.cursor, code.scans_count = pick.cursor, code.scans_count + 1
    session.add_all([link, code])
    session.add(
        ChannelEvent(
            code_id=code.id,
            at=now,
            event_type=EventType.SCAN,
            staff_id=pick.staff.id,
            source="route",
        )
    )


def welcome_text(template: str, *, nickname: str, outlet: str, staff: str) -> str:
    return (
        template.replace("{客户昵称}", nickname)
        .replace("{网点名称}", outlet)
        .replace("{员工姓名}", staff)
    )


@dataclass(frozen=True)
class EventAnswer:
    recorded: bool
    staff_id: int | None
    welcome: str
    tags: tuple[str, ...]


def record_event(
    session: Session,
    *,
    slug: str,
    customer_id: str,
    event_type: EventType,
    at: datetime | None = None,
    staff_userid: str | None = None,
    nickname: str = "",
) -> EventAnswer:
    """The live callback (WeCom tells us a customer added a staff member, joined a group,
    converted): store it once, and for a new friend return the greeting and tags to apply.
    A time outside the import window (future, or before METRICS_EARLIEST) is refused."""
    at = at or utcnow()
    at = at if at.tzinfo else at.replace(tzinfo=SHANGHAI)
    _ensure_in_window([at])
    customer = hash_customer(customer_id)
    with write_transaction(session):
        code = session.exec(select(ChannelCode).where(ChannelCode.slug == slug)).first()
        if code is None:
            raise NotFound(f"活码 {slug} 不存在")
        staff = (
            session.exec(select(Staff).where(Staff.wecom_userid == staff_userid)).first()
            if staff_userid
            else None
        )
        recorded = add_event(
            session, code, at, event_type, customer, staff.id if staff else None, "callback"
        )
        outlet = session.get(OrgUnit, code.outlet_id)
        welcome = welcome_text(
            code.welcome_message,
            nickname=nickname or "",
            outlet=outlet.name,
            staff=staff.name if staff else "",
        )
        return EventAnswer(
            recorded,
            staff.id if staff else None,
            welcome if event_type is EventType.ADD_FRIEND else "",
            tuple(code.tags),
        )


@dataclass(frozen=True)
class NewEvent:
    """One step of a customer through a code, before it is stored (customer already hashed)."""

    code: ChannelCode
    at: datetime
    event_type: EventType
    customer: str
    staff_id: int | None


EVENT_BATCH = 2_000  # rows per INSERT statement


def add_events(session: Session, events: Sequence[NewEvent], source: str) -> int:
    """Store events inside the caller's transaction; returns how many were new (see
    `store_events`)."""
    return len(store_events(session, events, source))


def store_events(
    session: Session, events: Sequence[NewEvent], source: str
) -> set[tuple[int, str, EventType]]:
    """Store events inside the caller's transaction; returns the (code id, customer, type)
    of those that were new.

    An event delivered twice (same code, customer, type and time) is skipped by the
    database's unique key, so a file of many thousands costs a few statements, not a lookup
    per row. Each new add_friend counts toward its code's adds (the maximum-adds cap), each
    new loss toward its losses.
    Times outside the import window are refused before anything is stored."""
    _ensure_in_window([event.at for event in events])
    session.flush()  # the statement below bypasses the unit of work
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    statement = (
        insert(ChannelEvent.__table__)
        .on_conflict_do_nothing()
        .returning(
            ChannelEvent.__table__.c.code_id,
            ChannelEvent.__table__.c.event_type,
            ChannelEvent.__table__.c.customer,
        )
    )
    codes = {event.code.id: event.code for event in events}
    counted = {EventType.ADD_FRIEND: "adds_count", EventType.LOSS: "losses_count"}
    tally: Counter[tuple[int, str]] = Counter()
    new: set[tuple[int, str, EventType]] = set()
    for start in range(0, len(events), EVENT_BATCH):
        batch = events[start : start + EVENT_BATCH]
        rows = [
            {
                "code_id": e.code.id,
                "at": e.at,
                "event_type": e.event_type,
                "customer": e.customer,
                "staff_id": e.staff_id,
                "source": source,
            }
            for e in batch
        ]
        for code_id, event_type, customer in session.execute(statement, rows):
            new.add((code_id, customer, EventType(event_type)))
            if (column := counted.get(EventType(event_type))) is not None:
                tally[(code_id, column)] += 1
    for (code_id, column), count in tally.items():
        # Counted in SQL: the code object may have been read before a scan or a callback
        # elsewhere added to the same count.
        session.execute(
            sa.update(ChannelCode)
            .where(ChannelCode.id == code_id)
            .values({column: getattr(ChannelCode, column) + count}),
            execution_options={"synchronize_session": False},
        )
        session.expire(codes[code_id], [column])
    return new


def _ensure_in_window(moments: Sequence[datetime]) -> None:
    """The one date-window rule for every way events come in (a file import has already
    named its bad lines; this guards the live path and any other caller)."""
    window = DateWindow.current()
    problems = [FieldProblem("at", p) for m in moments if (p := window.moment_problem(m))]
    if problems:
        summary = f"事件未记录：{len(problems)} 条事件的时间不在允许范围内"
        raise ValidationFailed(problems[:5], summary=summary)


def add_event(
    session: Session,
    code: ChannelCode,
    at: datetime,
    event_type: EventType,
    customer: str,
    staff_id: int | None,
    source: str,
) -> bool:
    """Store one event; False when it was already stored (the same event delivered twice)."""
    return add_events(session, [NewEvent(code, at, event_type, customer, staff_id)], source) == 1
