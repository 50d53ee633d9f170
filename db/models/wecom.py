"""The live WeCom loop's own tables: the outbox of calls to WeCom (run in the background,
retried, failures kept visible), the callbacks received (replay protection, the admin
page's "last callback"), the last outcome of each kind of contact with WeCom, and the
corp's tag ids by name."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.models.base import enum_column, utcnow


class OutboxState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # gave up after the retries; shown on the admin page
    # A welcome message whose WelcomeCode had run out (WeCom keeps one ~20 s): not sent,
    # shown on the admin page with the failures. A VARCHAR value: no migration needed.
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return {
            "pending": "待发送",
            "running": "发送中",
            "done": "已完成",
            "failed": "失败",
            "expired": "已过期未发送",
        }[self.value]


class WeComOutbox(SQLModel, table=True):
    """One call to make to WeCom, written in the same transaction as the change that needs
    it, so no call is lost and none runs inside a database write."""

    __tablename__ = "wecom_outbox"
    __table_args__ = (sa.Index("ix_wecom_outbox_due", "state", "next_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    code_id: int | None = Field(default=None, index=True)
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    state: OutboxState = Field(
        default=OutboxState.PENDING, sa_column=enum_column(OutboxState, nullable=False)
    )
    attempts: int = 0
    next_at: dt.datetime = Field(default_factory=utcnow)
    lease_until: dt.datetime | None = None
    result: str = Field(default="", max_length=500)
    error: str = Field(default="", max_length=500)
    created_at: dt.datetime = Field(default_factory=utcnow)
    finished_at: dt.datetime | None = None


class WeComCallback(SQLModel, table=True):
    """A callback received: its digest is unique, so a replayed message is seen once."""

    __tablename__ = "wecom_callback"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)  # SHA-256 of the ciphertext
    event: str = Field(default="", max_length=64)  # Event/ChangeType
    outcome: str = Field(default="", max_length=300)
    staff_userid: str = Field(default="", max_length=64)
    received_at: dt.datetime = Field(default_factory=utcnow, index=True)


class WeComStatus(SQLModel, table=True):
    """The last outcome of one kind of contact with WeCom ("token", "callback")."""

    __tablename__ = "wecom_status"

    kind: str = Field(primary_key=True, max_length=32)
    ok: bool = True
    detail: str = Field(default="", max_length=300)
    at: dt.datetime = Field(default_factory=utcnow)


class WeComTag(SQLModel, table=True):
    """A corp customer tag's WeCom id by its name (created once when missing)."""

    __tablename__ = "wecom_tag"

    name: str = Field(primary_key=True, max_length=40)
    tag_id: str = Field(max_length=64)
