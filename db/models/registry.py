"""The metric registry (指标库) and the values of registry metrics, stored long/narrow.

`MetricDef` describes every metric: the six of the outlet daily report (`builtin`: their
values live in the wide `daily_metric` / `metric_snapshot` tables, unchanged) and any metric
an admin adds later. Values of non-builtin outlet metrics and of every staff metric are rows
keyed by metric key (`OutletMetricValue`, `StaffMetricValue`), so adding a metric needs no
migration. `SeriesSnapshot` holds the running totals of one (level, metric) at the end of a
day as an int64 array indexed by slot (outlet id, or staff stint id) and the last day each
slot reported (int32 day ordinal, 0 = never), so any period costs two array reads.

A staff member earns values at one outlet on a given day; `StaffStint` numbers each
(staff, outlet) pair, and staff values are kept per stint so a transfer or a departure
leaves the history where it was earned.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.models.base import utcnow


class MetricDef(SQLModel, table=True):
    __tablename__ = "metric_def"

    key: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=40)
    unit: str = Field(default="", max_length=10)
    kind: str = Field(max_length=8)  # flow | stock
    is_money: bool = False
    at_outlet: bool = True
    at_staff: bool = False
    sort_order: int = 100
    active: bool = True
    builtin: bool = False  # stored in the wide outlet tables (the six original metrics)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class OutletMetricValue(SQLModel, table=True):
    """One outlet's value of one non-builtin registry metric on one day (money in fen)."""

    __tablename__ = "outlet_metric_value"

    metric_key: str = Field(primary_key=True, max_length=40)
    date: dt.date = Field(primary_key=True)
    outlet_id: int = Field(foreign_key="org_unit.id", primary_key=True)
    value: int = Field(sa_type=sa.BigInteger)


class StaffStint(SQLModel, table=True):
    """A staff member at one outlet: the slot their values there are counted in."""

    __tablename__ = "staff_stint"
    __table_args__ = (sa.UniqueConstraint("staff_id", "outlet_id", name="uq_staff_stint"),)

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    outlet_id: int = Field(foreign_key="org_unit.id", index=True)


class StaffMetricValue(SQLModel, table=True):
    """One staff member's value of one metric on one day, with the outlet they were at."""

    __tablename__ = "staff_metric_value"
    __table_args__ = (sa.Index("ix_staff_metric_value_stint", "stint_id", "date"),)

    metric_key: str = Field(primary_key=True, max_length=40)
    date: dt.date = Field(primary_key=True)
    staff_id: int = Field(primary_key=True)
    stint_id: int
    value: int = Field(sa_type=sa.BigInteger)


class SeriesSnapshot(SQLModel, table=True):
    """Running totals (flows) or last values (stocks) of one metric at one level, per slot."""

    __tablename__ = "series_snapshot"

    level: str = Field(primary_key=True, max_length=8)  # outlet | staff
    metric_key: str = Field(primary_key=True, max_length=40)
    date: dt.date = Field(primary_key=True)
    size: int
    cum: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    last: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))


class StaffTarget(SQLModel, table=True):
    """A staff member's target for one metric over one period (money in fen)."""

    __tablename__ = "staff_target"

    staff_id: int = Field(foreign_key="staff.id", primary_key=True)
    metric_key: str = Field(primary_key=True, max_length=40)
    period_start: dt.date = Field(primary_key=True)
    period_end: dt.date
    target: int = Field(sa_type=sa.BigInteger)
    imported_at: dt.datetime = Field(default_factory=utcnow)
