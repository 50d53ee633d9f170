"""Scheduled work: one row per job run (the exactly-once claim), the daily rank snapshots
the jobs write, and the data-quality findings of the nightly check."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.models.base import utcnow


class JobRun(SQLModel, table=True):
    """A job's run for one scheduled time. The unique (job, scheduled_for) is the claim: only
    the process whose insert succeeds runs it, whatever the number of schedulers."""

    __tablename__ = "job_run"
    __table_args__ = (
        sa.UniqueConstraint("job", "scheduled_for", name="uq_job_run_job_scheduled_for"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=40, index=True)
    scheduled_for: dt.datetime
    status: str = Field(max_length=16)  # running | ok | failed
    claimed_by: str = Field(max_length=80)
    started_at: dt.datetime = Field(default_factory=utcnow)
    finished_at: dt.datetime | None = None
    lease_until: dt.datetime
    attempts: int = 1
    summary: str = Field(default="", max_length=500)
    error: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))


class RankSnapshot(SQLModel, table=True):
    """Every outlet's rank on one metric over the 30 days ending `date`, in the province and
    in its city: int32 arrays indexed by outlet id (0 = not ranked)."""

    __tablename__ = "rank_snapshot"

    date: dt.date = Field(primary_key=True)
    metric: str = Field(primary_key=True, max_length=20)
    size: int
    province_rank: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    city_rank: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)


class DataQualityIssue(SQLModel, table=True):
    """A finding of the nightly data check for one day: an outlet that did not report, or a
    value far outside the outlet's own history."""

    __tablename__ = "data_quality_issue"

    id: int | None = Field(default=None, primary_key=True)
    date: dt.date = Field(index=True)
    outlet_id: int = Field(foreign_key="org_unit.id", index=True)
    kind: str = Field(max_length=16)  # missing | outlier
    metric: str = Field(default="", max_length=20)
    value: int | None = Field(default=None, sa_type=sa.BigInteger)
    mean: float | None = None
    stddev: float | None = None
    created_at: dt.datetime = Field(default_factory=utcnow)
