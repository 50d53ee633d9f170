"""Timestamps mean the same instant on SQLite and PostgreSQL, whatever the time zone of the
server process or of the database session: stored as UTC, read back aware, shown and
grouped by Shanghai day."""

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.channels.codes import CodeInput, create_code
from core.channels.funnel import daily, import_events
from core.platform import audit
from core.platform.audit import AuditAction, AuditFilter, list_audit
from core.platform.clock import SHANGHAI, format_timestamp
from db.bulk import bulk_insert
from db.engine import get_engine
from db.models import AuditLog, ChannelEvent, ChannelType, EventType, Role
from tests.factories import make_staff, make_tree, make_users

EVENING = datetime(2026, 11, 22, 20, 30, tzinfo=SHANGHAI)  # 12:30 UTC, same day
EARLY = datetime(2026, 11, 22, 7, 30, tzinfo=SHANGHAI)  # 23:30 UTC the day before


@pytest.fixture
def shanghai_process() -> Iterator[None]:
    """Run as on a server whose local time zone is Asia/Shanghai (the usual case in China)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Asia/Shanghai")
        time.tzset()
        yield
    time.tzset()


def fresh(db_url: str) -> Session:
    return Session(get_engine(db_url), expire_on_commit=False)


def test_a_timestamp_reads_back_as_the_same_aware_instant(session: Session, db_url: str) -> None:
    audit.record(session, actor=None, action=AuditAction.LOGIN_FAILED, summary="x")
    entry = session.exec(select(AuditLog)).one()
    entry.at = EVENING
    session.commit()
    with fresh(db_url) as other:
        stored = other.exec(select(AuditLog.at)).one()
    assert stored.tzinfo is not None
    assert stored == EVENING


def test_the_same_instant_whatever_the_database_session_time_zone(
    session: Session, db_url: str
) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # LOCAL: only this transaction, so the pooled connection goes back unchanged.
        session.execute(sa.text("SET LOCAL TIME ZONE 'Asia/Shanghai'"))
    audit.record(session, actor=None, action=AuditAction.LOGIN_FAILED, summary="x")
    session.exec(select(AuditLog)).one().at = EVENING
    session.commit()
    with fresh(db_url) as other:
        assert other.exec(select(AuditLog.at)).one() == EVENING
        utc = sa.func.timezone("UTC", AuditLog.at) if "postgresql" in db_url else AuditLog.at
        raw = other.execute(sa.select(sa.cast(utc, sa.String(40)))).scalar()
    assert str(raw).startswith("2026-11-22 12:30")  # stored as UTC


def test_shown_in_shanghai_time_on_a_server_set_to_shanghai(
    session: Session, db_url: str, shanghai_process: None
) -> None:
    audit.record(session, actor=None, action=AuditAction.LOGIN_FAILED, summary="x")
    session.exec(select(AuditLog)).one().at = EVENING
    session.commit()
    with fresh(db_url) as other:
        assert format_timestamp(other.exec(select(AuditLog.at)).one()) == "2026-11-22 20:30"


def test_audit_days_are_shanghai_days(session: Session) -> None:
    make_tree(session)
    admin = make_users(session)[Role.ADMIN]
    audit.record(session, actor=admin, action=AuditAction.USER_CREATE, summary="early")
    session.exec(select(AuditLog)).one().at = EARLY
    session.commit()

    def on(day: date) -> list[str]:
        found = list_audit(session, actor=admin, filters=AuditFilter(start=day, end=day))
        return [e.summary for e in found]

    assert on(date(2026, 11, 22)) == ["early"]
    assert on(date(2026, 11, 21)) == []


def test_imported_and_bulk_written_events_fall_on_their_shanghai_day(session: Session) -> None:
    tree = make_tree(session)
    users = make_users(session)
    staff = make_staff(session, "O111", "张三")
    code = create_code(
        session,
        actor=users[Role.DESIGNER],
        data=CodeInput(
            name="柜台码",
            channel_type=ChannelType.COUNTER,
            outlet_id=tree.outlets["O111"].id,
            staff_ids=(staff,),
        ),
    )
    lines = f"time,code,customer,event\n2026-11-22 20:30:00,{code.slug},wm1,scan\n"
    assert import_events(
        session, actor=users[Role.DESIGNER], data=lines.encode(), filename="e.csv"
    ).ok
    with session.begin():  # the seed's and the benchmark's path
        bulk_insert(
            session,
            "channel_event",
            ["code_id", "at", "event_type", "customer", "staff_id", "source"],
            [(code.id, EARLY, EventType.SCAN.value, "", staff, "route")],
        )
    days = daily(session, actor=users[Role.ADMIN], start=date(2026, 11, 21), end=date(2026, 11, 23))
    assert days == [(date(2026, 11, 22), EventType.SCAN, 2)]
    stored = sorted(session.exec(select(ChannelEvent.at)).all())
    assert stored == [EARLY, EVENING]
    assert all(moment.tzinfo is not None for moment in stored)
    assert stored[0].astimezone(UTC).day == 21
