"""Daily outlet metrics as imported, and their per-outlet running totals.

`DailyMetric` holds exactly what was imported: one row per (date, outlet) that reported.
`MetricCumulative` is derived from it (core/metrics.py keeps it in step inside the import
transaction): one row per outlet per calendar day from the outlet's first report up to
the latest imported date, holding running sums of the flow metrics and the last known
value of the stock metrics. Any period's flow is then the difference of two rows and its
stock one row, so a leaderboard over any range reads two rows per outlet.
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


class MetricCumulative(SQLModel, table=True):
    __tablename__ = "metric_cumulative"
    __table_args__ = (
        sa.Index("ix_metric_cumulative_outlet_date", "outlet_id", "date"),
        {"sqlite_with_rowid": False},
    )

    date: dt.date = Field(primary_key=True)
    outlet_id: int = Field(primary_key=True)
    cum_new_friends: int = Field(default=0, sa_type=sa.BigInteger)
    cum_conversions: int = Field(default=0, sa_type=sa.BigInteger)
    cum_deposits_fen: int = Field(default=0, sa_type=sa.BigInteger)
    total_friends: int = 0
    groups: int = 0
    group_members: int = 0
