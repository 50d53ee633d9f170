"""Scheduled jobs: exactly once across processes, caught up once after downtime, failures
recorded without stopping the others, every job idempotent, reminders to the right people."""

import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns.approvals import Decision, decide_plan, submit_plan
from core.campaigns.design import RightsDayRule, RuleKind
from core.campaigns.plans import save_draft
from core.jobs import scheduler
from core.jobs import tasks as jobs
from core.metrics.importing import import_metrics
from core.platform.clock import SHANGHAI
from core.platform.notifications import my_notifications
from core.platform.permissions import Actor
from db.models import (
    Campaign,
    DataQualityIssue,
    JobRun,
    Notification,
    PlanState,
    RankSnapshot,
    Role,
)
from tests.factories import (
    complete_design,
    make_stages,
    make_tree,
    make_user,
    make_users,
    metrics_csv,
)

ROOT = Path(__file__).parents[2]
SYSTEM = Actor.system("test")


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI)


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    users = make_users(session)
    users["manager2"] = make_user(session, "manager2", Role.OUTLET_MANAGER, "O211")
    users["reviewer2"] = make_user(session, "reviewer2", Role.PROVINCE_REVIEWER)
    make_stages(session, ["reviewer"], ["reviewer2"])
    return tree, users


def approved_campaign(session: Session, users, start: date, end: date, **changes: object) -> int:
    design = complete_design(session, start_date=start, end_date=end, **changes)
    cid = save_draft(session, actor=users[Role.CITY_PLANNER], design=design).id
    submit_plan(session, actor=users[Role.CITY_PLANNER], campaign_id=cid)
    for reviewer in (users[Role.PROVINCE_REVIEWER], users["reviewer2"]):
        session.rollback()
        decide_plan(
            session,
            actor=reviewer,
            campaign_id=cid,
            decision=Decision.APPROVE,
            comment="",
            expected_lock=session.get(Campaign, cid).lock_version,
        )
    return cid


def test_latest_tick_and_weekdays() -> None:
    spec = scheduler.JobSpec("x", "x", time(9, 30), lambda *a: "", weekdays_only=True)
    saturday = at(date(2026, 11, 28), 12)
    assert spec.latest_tick(saturday) == at(date(2026, 11, 27)).replace(hour=9, minute=30)
    assert spec.latest_tick(at(date(2026, 11, 25), 9)) == at(date(2026, 11, 24)).replace(
        hour=9, minute=30
    )
    assert spec.next_tick(saturday).date() == date(2026, 11, 30)


def test_a_run_is_claimed_once_and_a_dead_claim_is_taken_over_after_its_lease(
    session: Session, db_url: str
) -> None:
    tick, now = at(date(2026, 11, 25), 3), at(date(2026, 11, 25), 4)
    first = scheduler.claim(session, "rank_snapshot", tick, now)
    assert first is not None
    assert (
        scheduler.claim(session, "rank_snapshot", tick, now + timedelta(minutes=5)) is None
    )  # lease still held
    taken = scheduler.claim(
        session, "rank_snapshot", tick, now + scheduler.LEASE + timedelta(seconds=1)
    )
    assert taken == first
    session.rollback()
    run = session.exec(select(JobRun)).one()
    assert run.attempts == 2 and run.status == "running"


def test_catch_up_runs_only_the_latest_missed_tick(session: Session, world) -> None:
    scheduler.run_due(at(date(2026, 11, 2)))
    scheduler.run_due(at(date(2026, 11, 6)))  # four days down: one run per job, not four
    session.rollback()
    runs = session.exec(select(JobRun.job, JobRun.scheduled_for)).all()
    by_job = {}
    for job_id, moment in runs:
        by_job.setdefault(job_id, []).append(moment.astimezone(SHANGHAI).date())
    assert by_job["rank_snapshot"] == [date(2026, 11, 2), date(2026, 11, 6)]
    assert by_job["approval_sla"] == [date(2026, 11, 2), date(2026, 11, 6)]
    assert all(r.status == "ok" for r in session.exec(select(JobRun)).all())


def test_a_failing_job_is_recorded_and_the_others_still_run(
    session: Session, world, monkeypatch
) -> None:
    def broken(*_args: object) -> str:
        raise RuntimeError("数据源不可用")

    monkeypatch.setitem(
        scheduler.JOBS, "broken", scheduler.JobSpec("broken", "坏任务", time(1, 0), broken)
    )
    outcome = scheduler.run_due(at(date(2026, 11, 25)))
    assert outcome["broken"] == "failed"
    assert [v for k, v in outcome.items() if k != "broken"] == ["ok"] * (len(outcome) - 1)
    session.rollback()
    failed = session.exec(select(JobRun).where(JobRun.job == "broken")).one()
    assert (
        failed.status == "failed"
        and "数据源不可用" in failed.error
        and failed.finished_at is not None
    )


def test_rights_day_reminders_reach_the_target_outlets_managers_only_and_once(
    session: Session, world
) -> None:
    _tree, users = world
    approved_campaign(session, users, date(2026, 12, 1), date(2026, 12, 31))  # C1, 逢8
    eve = at(date(2026, 12, 7), 9)
    assert jobs.rights_day_reminders(session, SYSTEM, eve) == (
        "明天（12月8日）是 1 个活动的权益日，提醒 1 人"
    )
    assert "提醒 0 人" in jobs.rights_day_reminders(session, SYSTEM, eve)  # idempotent
    assert [n.title for n in my_notifications(session, actor=users[Role.OUTLET_MANAGER])] == [
        "明天（12月8日）是会员权益日"
    ]
    assert my_notifications(session, actor=users["manager2"]) == []  # O211 is in C2, not targeted
    assert "不是任何活动的权益日" in jobs.rights_day_reminders(
        session, SYSTEM, at(date(2026, 12, 8), 9)
    )  # the 9th is no rights day


def test_sla_reminders_go_to_the_stage_reviewers_once_a_day(session: Session, world) -> None:
    _, users = world
    cid = save_draft(session, actor=users[Role.CITY_PLANNER], design=complete_design(session)).id
    submit_plan(session, actor=users[Role.CITY_PLANNER], campaign_id=cid)
    session.execute(
        sa.update(Campaign).where(Campaign.id == cid).values(submitted_at=at(date(2026, 11, 16)))
    )
    session.commit()
    before = {
        u: len(my_notifications(session, actor=users[u]))
        for u in (Role.PROVINCE_REVIEWER, "reviewer2")
    }
    monday = at(date(2026, 11, 23), 9)
    assert "1 个方案超时" in jobs.approval_sla(session, SYSTEM, monday)
    jobs.approval_sla(session, SYSTEM, monday)
    assert (
        len(my_notifications(session, actor=users[Role.PROVINCE_REVIEWER]))
        == before[Role.PROVINCE_REVIEWER] + 1
    )
    assert (
        len(my_notifications(session, actor=users["reviewer2"])) == before["reviewer2"]
    )  # not their stage


def test_campaign_dates_and_rank_snapshot_and_data_quality_are_idempotent(
    session: Session, world
) -> None:
    _, users = world
    cid = approved_campaign(session, users, date(2026, 11, 17), date(2026, 11, 19))
    assert "1 个活动" in jobs.campaign_dates(session, SYSTEM, at(date(2026, 11, 18), 0))
    session.rollback()
    assert session.get(Campaign, cid).state is PlanState.RUNNING  # scheduled and started in one run
    assert "没有需要" in jobs.campaign_dates(session, SYSTEM, at(date(2026, 11, 18), 0))
    rows = [
        (date(2026, 10, 1) + timedelta(days=d), c, 5 + (d % 3), 100, 1, 1, 1, "10")
        for d in range(30)
        for c in ("O111", "O112")
    ]
    rows.append((date(2026, 9, 30), "O113", 1, 1, 1, 1, 1, "1"))
    rows[-2] = (date(2026, 10, 30), "O112", 500, 100, 1, 1, 1, "10")  # a spike on the last day
    assert import_metrics(
        session, actor=users[Role.ADMIN], data=metrics_csv(rows), filename="m.csv"
    ).ok
    dec1 = at(date(2026, 10, 31), 7)
    for _ in range(2):
        jobs.rank_snapshot(session, SYSTEM, dec1)
        jobs.data_quality(session, SYSTEM, dec1)
    session.rollback()
    assert len(session.exec(select(RankSnapshot)).all()) == 6
    issues = session.exec(select(DataQualityIssue)).all()
    assert sorted((i.kind, i.metric) for i in issues) == [
        ("missing", ""),
        ("outlier", "new_friends"),
    ]
    assert {i.kind: i.outlet_id for i in issues}["missing"] == world[0].outlets["O113"].id


def test_the_first_night_after_the_first_import_checks_without_history(
    session: Session, world
) -> None:
    _, users = world
    first = [(date(2026, 10, 30), c, 5, 100, 1, 1, 1, "10") for c in ("O111", "O112")]
    assert import_metrics(
        session, actor=users[Role.ADMIN], data=metrics_csv(first), filename="m.csv"
    ).ok
    assert "0 个异常值" in jobs.data_quality(session, SYSTEM, at(date(2026, 10, 31), 7))


def test_two_schedulers_on_one_database_run_a_week_of_jobs_exactly_once(
    session: Session, world, db_url: str
) -> None:
    _, users = world
    rule = RightsDayRule(kind=RuleKind.DATES, dates=[date(2026, 11, 26)])
    cid = approved_campaign(session, users, date(2026, 11, 24), date(2026, 11, 27), rule=rule)
    env = {**os.environ, "DATABASE_URL": db_url}
    start = date(2026, 11, 22)
    for offset in range(7):
        moment = at(start + timedelta(days=offset), 10).isoformat()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "core", "scheduler", "--once", "--now", moment],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        ran = [
            line.split()[0]
            for out, _ in outputs
            for line in out.splitlines()
            if line.split()[1:2] == ["ok"]
        ]
        assert sorted(ran) == sorted(set(ran)) and len(ran) == len(scheduler.JOBS) - (
            offset == 6
        )  # Saturday: the SLA job's latest tick (Friday) already ran
    session.rollback()
    runs = session.exec(select(JobRun.job, JobRun.scheduled_for, JobRun.status)).all()
    assert len(runs) == len({(j, s) for j, s, _ in runs}) and {s for *_, s in runs} == {"ok"}
    assert (
        session.get(Campaign, cid).state is PlanState.ENDED
    )  # started on the 24th, ended on the 28th
    reminders = session.exec(
        select(Notification.user_id, Notification.title).where(
            Notification.title.startswith("明天")
        )
    ).all()
    assert reminders == [(users[Role.OUTLET_MANAGER].user_id, "明天（11月26日）是会员权益日")]
