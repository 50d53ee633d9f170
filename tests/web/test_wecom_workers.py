"""Several outbox workers at once: two `python -m core wecom-worker` processes (as two app
servers each start one) drain one outbox side by side against a fake WeCom that is busy
now and then; every queued greeting is sent exactly once, every tag call made once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.channels.codes import CodeInput, create_code
from core.channels.wecom import callbacks
from core.channels.wecom.actions import _store_tags
from db.engine import get_engine, is_postgres, session_scope
from db.models import ChannelType, OutboxState, Role, WeComOutbox, WeComTag
from tests.e2e.app_server import ROOT
from tests.factories import make_staff, make_tree, make_users
from tests.wecom_fake import FakeWeCom, add_event, wecom_env

ADDS = 60


def test_two_worker_processes_send_each_greeting_once(db_url: str, monkeypatch) -> None:
    fake = FakeWeCom(busy_rate=0.1).start()
    try:
        wecom_env(monkeypatch, fake)
        with Session(get_engine(db_url), expire_on_commit=False) as session:
            tree = make_tree(session)
            users = make_users(session)
            code = create_code(
                session,
                actor=users[Role.DESIGNER],
                data=CodeInput(
                    name="柜台码",
                    channel_type=ChannelType.COUNTER,
                    outlet_id=tree.outlets["O111"].id,
                    staff_ids=(make_staff(session, "O111", "张三"),),
                    tags=("网点柜台",),
                    welcome_message="您好",
                ),
            )
        items = [
            callbacks.check(
                *fake.callback(
                    add_event(
                        state=code.slug,
                        userid="wx_O111_张三",
                        external=f"wmTwo{i}",
                        welcome_code=f"T{i}",
                    )
                )
            )
            for i in range(ADDS)
        ]
        with session_scope() as session:
            callbacks.handle_events(session, items)  # queued: 60 welcomes, 60 tag calls

        command = [sys.executable, "-m", "core", "wecom-worker", "--wake-from-stdin"]
        workers = [
            subprocess.Popen(command, cwd=ROOT, env=os.environ.copy(), stdin=subprocess.PIPE)
            for _ in range(2)
        ]
        try:
            deadline = time.time() + 60
            while _open(db_url) and time.time() < deadline:
                time.sleep(0.2)
        finally:
            for worker in workers:
                worker.stdin.close()  # end of file: each finishes what it holds and exits
            codes = [worker.wait(20) for worker in workers]
        assert codes == [0, 0]
        assert _open(db_url) == 0
        assert not (unfinished := _not_done(db_url)), unfinished
        sent = [c for c, _ in fake.welcomes]
        assert sorted(sent) == sorted(f"T{i}" for i in range(ADDS)), "each greeting once"
        assert len(fake.marks) == ADDS
        assert len(fake.contact_ways) == 1
        assert fake.busy_answers > 0, "the fake was busy now and then: retries happened"
    finally:
        fake.stop()


def _open(db_url: str) -> int:
    with Session(get_engine(db_url)) as session:
        return session.execute(
            sa.select(sa.func.count())
            .select_from(WeComOutbox)
            .where(WeComOutbox.state.in_([OutboxState.PENDING, OutboxState.RUNNING]))
        ).scalar_one()


def _not_done(db_url: str) -> list[tuple[str, str, str]]:
    with Session(get_engine(db_url)) as session:
        return [
            (row.kind, row.state, row.error)
            for row in session.exec(
                select(WeComOutbox).where(WeComOutbox.state != OutboxState.DONE)
            )
        ]


def test_a_tag_stored_by_another_worker_meanwhile_is_not_an_error(db_url: str) -> None:
    """Two workers that both found a tag missing both store its id: the second waits for
    the first and updates, rather than failing its call on the duplicate name."""
    engine = get_engine(db_url)
    if not is_postgres(engine):
        pytest.skip("SQLite runs one write transaction at a time: no such race there")
    with Session(engine) as other:
        other.add(WeComTag(name="网点柜台", tag_id="et-first"))
        other.flush()  # inserted, not committed: the other worker is mid-transaction
        errors: list[BaseException] = []

        def store() -> None:
            try:
                _store_tags({"网点柜台": "et-first"})
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=store)
        thread.start()
        time.sleep(0.5)  # it is waiting on the name now
        other.commit()
        thread.join(10)
    assert not errors, errors
    with Session(engine) as session:
        assert session.get(WeComTag, "网点柜台").tag_id == "et-first"


def test_the_servers_scheduler_sweeps_the_outbox_only_when_no_worker_of_ours_does(
    db_url: str, monkeypatch
) -> None:
    """A sweep inside the server would make WeCom calls beside the callback route: the
    server's scheduler adds it only with WECOM_WORKER=none; `python -m core scheduler`
    (its own process) always does."""
    from core.jobs.scheduler import build_scheduler

    fake = FakeWeCom()  # not started: only its settings are needed
    wecom_env(monkeypatch, fake)
    assert "wecom-outbox" in {job.id for job in build_scheduler().get_jobs()}
    assert "wecom-outbox" not in {job.id for job in build_scheduler(wecom_sweep=False).get_jobs()}
