"""The production set-up: two `streamlit run app.py` processes on one PostgreSQL database
(README "Production"). A login on one is valid on the other, scans split between them are
each counted once, and with both schedulers on every job runs once per scheduled time.

PostgreSQL only (SQLite is the one-process set-up): skipped when TEST_DATABASE_URL is unset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from sqlmodel import Session, select

import core.jobs.tasks  # noqa: F401  (registers the jobs)
from core.channels.codes import CodeInput, create_code
from core.jobs import scheduler
from db.engine import get_engine
from db.models import (
    AuditLog,
    AuthSession,
    ChannelCode,
    ChannelCodeStaff,
    ChannelEvent,
    ChannelType,
    JobRun,
    OrgUnit,
    Role,
)
from tests.conftest import PG_URL, _truncate_all
from tests.e2e.app_server import ROOT, AppProcess, running_apps
from tests.factories import PASSWORD, make_staff, make_tree, make_user
from ui.widgets import SESSION_COOKIE

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)")

SCANS = 40


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, browser_path: str, postgres_ready: str
) -> Iterator[dict]:
    """A small province with a channel code, then two app processes (schedulers on) on it."""
    _truncate_all(PG_URL)
    with Session(get_engine(PG_URL), expire_on_commit=False) as session:
        make_tree(session)
        make_user(session, "manager", Role.OUTLET_MANAGER, "O111")
        staff = [make_staff(session, "O111", name) for name in ("张三", "李四")]
        outlet_id = session.exec(select(OrgUnit.id).where(OrgUnit.code == "O111")).one()
        code = create_code(
            session,
            actor=make_user(session, "designer", Role.DESIGNER),
            data=CodeInput(
                name="柜台码",
                channel_type=ChannelType.COUNTER,
                outlet_id=outlet_id,
                staff_ids=tuple(staff),
            ),
        )
    logs = tmp_path_factory.mktemp("two-processes")
    env = {"DEMO_MODE": "0", "SCHEDULER_ENABLED": "1"}
    with running_apps(PG_URL, [logs / "a.log", logs / "b.log"], env=env) as apps:
        yield {"apps": apps, "slug": code.slug, "code_id": code.id}
    _truncate_all(PG_URL)


def _login(app: AppProcess) -> str:
    response = httpx.post(
        f"{app.base}/auth/login",
        data={"username": "manager", "password": PASSWORD},
        headers={"Origin": app.base},
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    return response.cookies[SESSION_COOKIE]


def test_a_login_on_one_process_is_valid_on_the_other(world: dict, browser) -> None:
    first, second = world["apps"]
    token = _login(first)
    context = browser.new_context(locale="zh-CN")
    try:
        context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": second.base}])
        page = context.new_page()
        page.goto(second.base)
        expect(page.get_by_role("heading", name="您好，manager")).to_be_visible(timeout=30_000)
    finally:
        context.close()
    # The other process also ends it: its logout finds the session the first one opened.
    logout = httpx.post(
        f"{second.base}/auth/logout",
        cookies={SESSION_COOKIE: token},
        headers={"Origin": second.base},
    )
    assert logout.status_code == 303
    with Session(get_engine(PG_URL)) as session:
        assert session.exec(select(AuthSession)).all() == []
        actions = session.execute(
            sa.select(AuditLog.action, AuditLog.actor_name).order_by(AuditLog.id)
        ).all()
    assert [tuple(a) for a in actions[-2:]] == [
        ("auth.login", "manager"),
        ("auth.logout", "manager"),
    ]


def test_scans_split_between_the_processes_are_each_counted_once(world: dict) -> None:
    apps = world["apps"]

    def scan(i: int) -> httpx.Response:
        return httpx.get(f"{apps[i % 2].base}/c/{world['slug']}")

    with ThreadPoolExecutor(4) as pool:  # side by side, alternating processes
        answers = list(pool.map(scan, range(SCANS)))
    assert {a.status_code for a in answers} == {302}
    with Session(get_engine(PG_URL)) as session:
        code = session.get(ChannelCode, world["code_id"])
        events = session.exec(select(ChannelEvent).where(ChannelEvent.code_id == code.id)).all()
        shares = session.exec(
            select(ChannelCodeStaff.assigned_total).where(ChannelCodeStaff.code_id == code.id)
        ).all()
    assert code.scans_count == SCANS and len(events) == SCANS
    assert sorted(shares) == [SCANS // 2, SCANS // 2]  # round robin, no pick lost or doubled
    locations = [a.headers["location"] for a in answers]
    assert len(set(locations)) == 2 and {locations.count(x) for x in set(locations)} == {SCANS // 2}


def test_both_schedulers_run_each_job_once(world: dict) -> None:
    """Both processes start their scheduler, whose catch-up runs every job's latest tick at
    start-up: between them, one run per (job, scheduled time). Two `scheduler --once` run
    side by side afterwards find every run already claimed."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with Session(get_engine(PG_URL)) as session:
            runs = session.exec(select(JobRun)).all()
        if len(runs) >= len(scheduler.JOBS) and all(r.status != "running" for r in runs):
            break
        time.sleep(1)
    records = _job_runs()
    keys = [(r["job"], r["scheduled_for"]) for r in records]
    assert sorted({job for job, _ in keys}) == sorted(scheduler.JOBS)
    assert len(keys) == len(set(keys)) == len(scheduler.JOBS)  # one run each
    assert {r["status"] for r in records} == {"ok"}, records
    pids = {str(app.process.pid) for app in world["apps"]}
    assert {r.claimed_by.rsplit(":", 1)[1] for r in runs} <= pids
    assert {r.attempts for r in runs} == {1}
    once = [_cli("scheduler", "--once", wait=False) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in once]
    assert [p.returncode for p in once] == [0, 0], outputs
    ran = [line.split()[0] for out, _ in outputs for line in out.splitlines() if " ok" in line]
    assert len(ran) == len(set(ran))  # nothing twice (nothing at all unless a tick just passed)
    keys = [(r["job"], r["scheduled_for"]) for r in _job_runs()]
    assert len(keys) == len(set(keys)) == len(scheduler.JOBS) + len(ran)


def _cli(*args: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    command = [sys.executable, "-m", "core", *args]
    env = {**os.environ, "DATABASE_URL": PG_URL}
    if wait:
        return subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _job_runs() -> list[dict]:
    listed = _cli("job-runs", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)
