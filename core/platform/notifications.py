"""In-app notifications (消息): created inside the transaction of the change they report,
read by their recipient only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from core.platform.clock import utcnow
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import Notification


def notify(
    session: Session,
    user_ids: Iterable[int],
    *,
    title: str,
    body: str = "",
    link: str = "",
    dedupe_key: str | None = None,
) -> int:
    """Queue a message to each user; with `dedupe_key`, a message already sent is not repeated
    (the key is suffixed with the user id). Returns how many were created."""
    created = 0
    for user_id in sorted(set(user_ids)):
        key = f"{dedupe_key}:{user_id}" if dedupe_key else None
        if (
            key
            and session.exec(select(Notification.id).where(Notification.dedupe_key == key)).first()
        ):
            continue
        session.add(
            Notification(
                user_id=user_id, title=title[:100], body=body[:1000], link=link, dedupe_key=key
            )
        )
        created += 1
    return created


@dataclass(frozen=True)
class NotificationRead:
    id: int
    created_at: datetime
    title: str
    body: str
    link: str
    read: bool

    @property
    def page(self) -> str | None:
        """The url path of the page that deals with it ("approvals" of "approvals?plan=3")."""
        return self.link.split("?", 1)[0] or None

    @property
    def params(self) -> dict[str, str]:
        if "?" not in self.link:
            return {}
        return dict(
            part.split("=", 1) for part in self.link.split("?", 1)[1].split("&") if "=" in part
        )


def my_notifications(
    session: Session, *, actor: Actor, unread_only: bool = False, limit: int = 200
) -> list[NotificationRead]:
    ensure_allowed(actor, Action.VIEW_NOTIFICATIONS)
    query = select(Notification).where(Notification.user_id == actor.user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    rows = session.exec(
        query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    )
    return [
        NotificationRead(n.id, n.created_at, n.title, n.body, n.link, n.read_at is not None)
        for n in rows
    ]


def unread_count(session: Session, *, actor: Actor) -> int:
    if actor.user_id is None:
        return 0
    query = (
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
    )
    return session.execute(query).scalar_one()


def mark_read(session: Session, *, actor: Actor, ids: Iterable[int] | None = None) -> int:
    """Mark the actor's own messages read (all of them when `ids` is None). Reading is the
    user's own state, not business data, so it is not audited."""
    ensure_allowed(actor, Action.VIEW_NOTIFICATIONS)
    with write_transaction(session):
        query = sa.update(Notification).where(
            Notification.user_id == actor.user_id, Notification.read_at.is_(None)
        )
        if ids is not None:
            query = query.where(Notification.id.in_(list(ids)))
        return session.execute(query.values(read_at=utcnow())).rowcount
