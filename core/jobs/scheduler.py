"""Running scheduled jobs exactly once across processes.

APScheduler (3.x) only triggers: each process that runs a scheduler (the app by default,
`python -m core scheduler` in production, `scheduler --once` from cron) asks the database
before running anything. A run is claimed by inserting its (job, scheduled time) row under
a unique constraint; only the process whose insert succeeds runs it. A claim whose process
died is taken over when its lease has expired. After downtime only the latest missed tick
of each job is run (caught up once, not once per missed tick). A failing job is recorded
and does not stop the others.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from core.platform.clock import SHANGHAI, utcnow
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import session_scope, write_transaction
from db.models import JobRun

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=15)

JobFn = Callable[[Session, Actor, datetime], str]


@dataclass(frozen=True)
class JobSpec:
    id: str  # stable: it names the APScheduler job and the job_run rows
    label: str
    at: time  # daily, Asia/Shanghai
    run: JobFn  # (session, acting system user, scheduled time) -> summary
    weekdays_only: bool = False

    @property
    def schedule_text(self) -> str:
        return f"{'工作日' if self.weekdays_only else '每天'} {self.at:%H:%M}"

    def latest_tick(self, now: datetime) -> datetime | None:
        """The newest scheduled time at or before `now` (aware, UTC)."""
        local = now.astimezone(SHANGHAI)
        day = local.date()
        for _ in range(8):
            tick = datetime.combine(day, self.at, tzinfo=SHANGHAI)
            if tick <= local and (not self.weekdays_only or tick.weekday() < 5):
                return tick.astimezone(tz=now.tzinfo)
            day -= timedelta(days=1)
        return None

    def next_tick(self, now: datetime) -> datetime:
        local = now.astimezone(SHANGHAI)
        day = local.date()
        while True:
            tick = datetime.combine(day, self.at, tzinfo=SHANGHAI)
            if tick > local and (not self.weekdays_only or tick.weekday() < 5):
                return tick
            day += timedelta(days=1)


JOBS: dict[str, JobSpec] = {}


def job(spec: JobSpec) -> JobSpec:
    JOBS[spec.id] = spec
    return spec


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(session: Session, job_id: str, scheduled_for: datetime, now: datetime) -> int | None:
    """Claim a run; returns its id, or None when another process has it (or it is done)."""
    with write_transaction(session):
        existing = session.exec(
            select(JobRun).where(JobRun.job == job_id, JobRun.scheduled_for == scheduled_for)
        ).first()
        if existing is None:
            try:
                with session.begin_nested():
                    # `now` may be pretended (scheduler --once --now); the lease follows it so that
                    # processes sharing the pretence agree, the timestamps are real.
                    run = JobRun(
                        job=job_id,
                        scheduled_for=scheduled_for,
                        status="running",
                        claimed_by=worker_name(),
                        started_at=utcnow(),
                        lease_until=now + LEASE,
                    )
                    session.add(run)
                    session.flush()
                return run.id
            except sa.exc.IntegrityError:
                return None  # another process inserted it first
        if existing.status != "running" or existing.lease_until > now:
            return None
        # The process that claimed it died: take the run over (one taker wins the update).
        taken = session.execute(
            sa.update(JobRun)
            .where(
                JobRun.id == existing.id,
                JobRun.status == "running",
                JobRun.lease_until == existing.lease_until,
            )
            .values(
                claimed_by=worker_name(),
                started_at=utcnow(),
                lease_until=now + LEASE,
                attempts=JobRun.attempts + 1,
            )
        ).rowcount
        return existing.id if taken == 1 else None


def _finish(session: Session, run_id: int, status: str, summary: str = "", error: str = "") -> None:
    with write_transaction(session):
        session.execute(
            sa.update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=status, finished_at=utcnow(), summary=summary[:500], error=error)
        )


def run_job(
    spec: JobSpec, scheduled_for: datetime, *, now: datetime | None = None, url: str | None = None
) -> str | None:
    """Claim and run one job for one scheduled time; returns its status, None if not ours."""
    now = now or utcnow()
    with session_scope(url) as session:
        run_id = claim(session, spec.id, scheduled_for, now)
        if run_id is None:
            return None
        try:
            summary = spec.run(session, Actor.system(f"job:{spec.id}"), scheduled_for)
        except Exception as exc:  # one job's failure must not stop the others
            session.rollback()
            log.exception("job %s failed", spec.id)
            _finish(
                session,
                run_id,
                "failed",
                error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
            )
            return "failed"
        _finish(session, run_id, "ok", summary=summary or "")
        return "ok"


def run_due(now: datetime | None = None, *, url: str | None = None) -> dict[str, str | None]:
    """Run every job whose latest tick at `now` has not run yet (the catch-up and `--once`)."""

    now = now or utcnow()
    outcome = {}
    for spec in JOBS.values():
        tick = spec.latest_tick(now)
        if tick is not None:
            outcome[spec.id] = run_job(spec, tick, now=now, url=url)
    return outcome


def run_now(session: Session, *, actor: Actor, job_id: str) -> str | None:
    """An admin's "run now": a run of its own, scheduled at this very moment."""

    ensure_allowed(actor, Action.MANAGE_JOBS)
    spec = JOBS.get(job_id)
    if spec is None:
        raise ValueError(job_id)
    moment = utcnow()
    return run_job(spec, moment, now=moment)


# --- reading runs ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunRead:
    job: str
    scheduled_for: datetime
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str
    summary: str
    claimed_by: str
    attempts: int

    @property
    def seconds(self) -> float | None:
        return (
            None
            if self.finished_at is None
            else (self.finished_at - self.started_at).total_seconds()
        )


def job_runs(
    session: Session, *, since: date | None = None, job_id: str | None = None, limit: int = 500
) -> list[RunRead]:
    """Runs, newest scheduled first (for the CLI and the admin page)."""
    query = select(JobRun).order_by(JobRun.scheduled_for.desc(), JobRun.id.desc())
    if since is not None:
        query = query.where(
            JobRun.scheduled_for >= datetime.combine(since, time(0), tzinfo=SHANGHAI)
        )
    if job_id:
        query = query.where(JobRun.job == job_id)
    return [
        RunRead(
            r.job,
            r.scheduled_for,
            r.started_at,
            r.finished_at,
            r.status,
            r.error,
            r.summary,
            r.claimed_by,
            r.attempts,
        )
        for r in session.exec(query.limit(limit))
    ]


# --- the trigger ---------------------------------------------------------------------------


def build_scheduler(*, blocking: bool = False, url: str | None = None, wecom_sweep: bool = True):
    """APScheduler with one cron job per JobSpec (stable ids); each firing claims its run.
    `wecom_sweep`: also drain the outbox of calls to WeCom every 30 s (live mode)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger

    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=SHANGHAI)
    for spec in JOBS.values():
        trigger = CronTrigger(
            hour=spec.at.hour,
            minute=spec.at.minute,
            day_of_week="mon-fri" if spec.weekdays_only else "*",
            timezone=SHANGHAI,
        )
        scheduler.add_job(
            _fire,
            trigger,
            args=[spec.id, url],
            id=spec.id,
            name=spec.label,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )
    if wecom_sweep:
        _add_wecom_sweep(scheduler)
    # Runs missed while no scheduler was up are caught up once, right after start.
    scheduler.add_job(
        run_due,
        kwargs={"url": url},
        id="catch-up",
        name="补跑错过的任务",
        next_run_time=datetime.now(SHANGHAI),
    )
    return scheduler


WECOM_SWEEP_SECONDS = 30


def _add_wecom_sweep(scheduler) -> None:
    """Live WeCom mode: drain the outbox of calls to WeCom every 30 s (the app's worker
    drains it at once; this catches what is left, and serves `python -m core scheduler`).
    Outbox rows are leased, so several schedulers never run one call twice."""
    from core.channels.wecom import service as wecom
    from core.platform.settings import get_settings

    if get_settings().wecom_enabled:
        scheduler.add_job(
            wecom.drain,
            "interval",
            seconds=WECOM_SWEEP_SECONDS,
            id="wecom-outbox",
            name="企业微信待发调用",
            max_instances=1,
            coalesce=True,
        )


def _fire(job_id: str, url: str | None) -> None:
    spec = JOBS[job_id]
    now = utcnow()
    tick = spec.latest_tick(now)
    if tick is not None:
        run_job(spec, tick, now=now, url=url)


@dataclass(frozen=True)
class JobStatus:
    id: str
    label: str
    schedule: str
    next_run: datetime
    last: RunRead | None


def job_overview(session: Session, *, actor: Actor, now: datetime | None = None) -> list[JobStatus]:
    """Every job with its next scheduled time and its newest run (the admin page)."""

    ensure_allowed(actor, Action.MANAGE_JOBS)
    now = now or utcnow()
    result = []
    for spec in JOBS.values():
        last = job_runs(session, job_id=spec.id, limit=1)
        result.append(
            JobStatus(
                spec.id,
                spec.label,
                spec.schedule_text,
                spec.next_tick(now),
                last[0] if last else None,
            )
        )
    return result


def recent_runs(session: Session, *, actor: Actor, since: date | None = None) -> list[RunRead]:
    ensure_allowed(actor, Action.MANAGE_JOBS)
    return job_runs(session, since=since)
