"""Daily outlet metrics as imported, and their running-total snapshots.

`DailyMetric` holds exactly what was imported: one row per (date, outlet) that reported.
`MetricSnapshot` is derived from it inside the same import transaction (core/metrics/snapshots.py):
for every day that has daily rows (the demo seed writes every calendar day, which is valid
too), the running totals of every outlet at the end of that day, stored column-wise as one
array per metric indexed by outlet id. The state at any day is the latest snapshot on or
before it; a period's flow is the difference of two states and its stock one state, so a
board over any range reads two or three rows whatever its length.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.models.base import utcnow


class DailyMetric(SQLModel, table=True):
    __tablename__ = "daily_metric"
    __table_args__ = (sa.Index("ix_daily_metric_outlet_date", "outlet_id", "date"),)

    date: dt.date = Field(primary_key=True)
    outlet_id: int = Field(foreign_key="org_unit.id", primary_key=True)
    new_friends: int = 0
    total_friends: int = 0
    groups: int = 0
    group_members: int = 0
    conversions: int = 0
    deposits_fen: int = Field(default=0, sa_type=sa.BigInteger)
    imported_at: dt.datetime = Field(default_factory=utcnow)


def _array() -> sa.Column:
    return sa.Column(sa.LargeBinary, nullable=False)


class MetricSnapshot(SQLModel, table=True):
    """Running totals of every outlet at the end of `date`: little-endian int64 arrays whose
    index is the outlet id (`size` entries); `reported` is a uint8 array (ever reported)."""

    __tablename__ = "metric_snapshot"

    date: dt.date = Field(primary_key=True)
    size: int
    cum_new_friends: bytes = Field(sa_column=_array())
    cum_conversions: bytes = Field(sa_column=_array())
    cum_deposits_fen: bytes = Field(sa_column=_array())
    total_friends: bytes = Field(sa_column=_array())
    groups: bytes = Field(sa_column=_array())
    group_members: bytes = Field(sa_column=_array())
    reported: bytes = Field(sa_column=_array())
