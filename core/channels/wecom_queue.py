"""What the rest of the app queues for WeCom (the outbox rows run by core.channels.wecom),
inside its own write transaction. In manual mode (no WECOM_* settings) these do nothing:
the app behaves exactly as before. Kept outside the wecom package, which imports codes and
events, so that codes and staff can queue without an import cycle."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from core.platform.clock import utcnow
from core.platform.settings import get_settings
from db.models import OutboxState, WeComOutbox

CONTACT_WAY = "contact_way"
GREET = "greet"
TRANSFER = "transfer"


def enqueue(
    session: Session, kind: str, payload: dict[str, Any], *, code_id: int | None = None
) -> None:
    """Add a call to the caller's open write transaction."""
    enqueue_rows(session, [outbox_row(kind, payload, code_id=code_id)])


def outbox_row(kind: str, payload: dict[str, Any], *, code_id: int | None = None) -> dict:
    """A pending call as a plain row, for `enqueue_rows`."""
    now = utcnow()
    return {
        "kind": kind,
        "code_id": code_id,
        "payload": payload,
        "state": OutboxState.PENDING,
        "attempts": 0,
        "next_at": now,
        "result": "",
        "error": "",
        "created_at": now,
    }


def enqueue_rows(session: Session, rows: list[dict]) -> None:
    """Add many calls to the caller's open write transaction in one statement. The callback
    writer queues two per new friend: as ORM objects they were half its time."""
    if rows:
        session.execute(sa.insert(WeComOutbox.__table__), rows)


def live() -> bool:
    return get_settings().wecom_enabled


def queue_contact_way(session: Session, code_id: int) -> None:
    """Create, update or delete the code's contact way (联系我) to match the code as it is
    when the call runs; one pending call per code is enough."""
    if not live():
        return
    session.flush()
    pending = session.exec(
        select(WeComOutbox.id).where(
            WeComOutbox.kind == CONTACT_WAY,
            WeComOutbox.code_id == code_id,
            WeComOutbox.state == OutboxState.PENDING,
        )
    ).first()
    if pending is None:
        enqueue(session, CONTACT_WAY, {}, code_id=code_id)


def queue_transfer(session: Session, *, from_userid: str, to_userid: str) -> None:
    """离职继承 in WeCom: the leaver's customers go to the heir (resigned transfer)."""
    if live() and from_userid and to_userid:
        enqueue(session, TRANSFER, {"handover_userid": from_userid, "takeover_userid": to_userid})
