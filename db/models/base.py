"""Column helpers shared by every table module."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

import sqlalchemy as sa


def enum_column(enum_cls: type[Enum], **kwargs: object) -> sa.Column:
    """Store an enum as its string value in a VARCHAR (no native PG enum types to migrate)."""
    return sa.Column(
        sa.Enum(
            enum_cls,
            native_enum=False,
            create_constraint=False,
            length=32,
            values_callable=lambda members: [m.value for m in members],
        ),
        **kwargs,
    )


def utcnow() -> datetime:
    """Current time, aware, in UTC: the storage form of every timestamp column."""
    return datetime.now(UTC)
