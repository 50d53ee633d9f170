"""The live WeCom loop against a loopback fake of WeCom: a code becomes a contact way, a
signed add callback becomes a friend event, a welcome message with the code's text and its
tags; replays change nothing; bad signatures, other corps and stale callbacks get 403."""

import os
import time

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.channels.code_edits import restaff_code, set_code_enabled
from core.channels.codes import CodeInput, create_code
from core.channels.funnel import GroupBy, funnel, funnel_total
from core.channels.staff import hand_over
from core.channels.wecom import outbox, service
from core.channels.wecom.crypto import WeComCrypto
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.models import (
    ChannelCode,
    ChannelEvent,
    ChannelType,
    EventType,
    OutboxState,
    Role,
    WeComCallback,
    WeComOutbox,
    WeComStatus,
)
from tests.factories import make_staff, make_tree, make_users
from tests.wecom_fake import AES_KEY, TOKEN, FakeWeCom, add_event, wecom_env
from ui.routes import routes

WELCOME = "您好{客户昵称}，我是{网点名称}的{员工姓名}"


@pytest.fixture
def fake():
    server = FakeWeCom().start()
    yield server
    server.stop()


@pytest.fixture
def world(db_url: str, fake: FakeWeCom, monkeypatch):
    wecom_env(monkeypatch, fake)
    with Session(get_engine(db_url), expire_on_commit=False) as session:
        tree = make_tree(session)
        users = make_users(session)
        staff = {n: make_staff(session, "O111", n) for n in ("张三", "李四")}
        code = create_code(
            session,
            actor=users[Role.CITY_PLANNER],
            data=CodeInput(
                name="柜台码",
                channel_type=ChannelType.COUNTER,
                outlet_id=tree.outlets["O111"].id,
                staff_ids=(staff["张三"],),
                tags=("网点柜台", "权益日"),
                welcome_message=WELCOME,
            ),
        )
    client = TestClient(Starlette(routes=routes), follow_redirects=False)
    return users, staff, code, client


def _count(db_url: str, model, *where) -> int:
    with Session(get_engine(db_url)) as session:
        return session.execute(
            sa.select(sa.func.count()).select_from(model).where(*where)
        ).scalar_one()


def _post(client: TestClient, params: dict, body: bytes):
    return client.post("/wecom/callback", params=params, content=body)


def test_the_whole_loop(db_url: str, fake: FakeWeCom, world) -> None:
    users, _, code, client = world
    # 1. The new code becomes a contact way with its slug as state; the scan goes to its QR.
    assert service.drain() == 1
    ((config_id, way),) = fake.contact_ways.items()
    assert way["state"] == code.slug and way["user"] == ["wx_O111_张三"]
    with Session(get_engine(db_url)) as session:
        stored = session.get(ChannelCode, code.id)
        assert stored.wecom_config_id == config_id
        assert stored.wecom_qr_url == f"https://wework.fake/qr/{config_id}"
        assert session.get(WeComStatus, "token") is None or True
    scan = client.get(f"/c/{code.slug}")
    assert scan.status_code == 302 and scan.headers["location"].endswith(config_id)

    # 2. A customer adds the staff member through it: friend recorded, greeted, tagged.
    fake.names["wmCustomer1"] = "王女士"
    params, body = fake.callback(
        add_event(
            state=code.slug, userid="wx_O111_张三", external="wmCustomer1", welcome_code="WC1"
        )
    )
    answer = _post(client, params, body)
    assert (answer.status_code, answer.text) == (200, "success")
    assert _count(db_url, ChannelEvent, ChannelEvent.event_type == EventType.ADD_FRIEND) == 1
    assert service.drain() == 2  # the welcome (its own lane), then the tags
    assert fake.welcomes == [("WC1", "您好王女士，我是O111支局的张三")]
    ((userid, external, tag_ids),) = fake.marks
    assert (userid, external) == ("wx_O111_张三", "wmCustomer1")
    assert sorted(fake.tags[t] for t in tag_ids) == ["权益日", "网点柜台"]
    today = shanghai_today()
    with Session(get_engine(db_url)) as session:
        assert session.get(ChannelCode, code.id).adds_count == 1
        rows = funnel(
            session, actor=users[Role.ADMIN], start=today, end=today, group_by=GroupBy.CODE
        )
        assert funnel_total(rows).counts[EventType.ADD_FRIEND] == 1
        # the raw customer id is not kept, in events or in the finished call
        assert "wmCustomer1" not in str(session.exec(select(ChannelEvent.customer)).all())
        assert "wmCustomer1" not in str(session.exec(select(WeComOutbox.payload)).all())
        assert session.get(WeComStatus, "token") is None  # no listener outside the app

    # 3. The same callback again: nothing changes.
    assert _post(client, params, body).status_code == 200
    assert _count(db_url, ChannelEvent, ChannelEvent.event_type == EventType.ADD_FRIEND) == 1
    assert _count(db_url, WeComOutbox) == 3 and service.drain() == 0
    # WeCom re-delivering the same event (new ciphertext) is stored once too.
    again_params, again_body = fake.callback(
        add_event(
            state=code.slug,
            userid="wx_O111_张三",
            external="wmCustomer1",
            welcome_code="WC1",
            at=int(params["timestamp"]),
        )
    )
    assert _post(client, again_params, again_body).status_code == 200
    assert _count(db_url, ChannelEvent, ChannelEvent.event_type == EventType.ADD_FRIEND) == 1
    assert len(fake.welcomes) == 1

    # 4. A second add with the same tags creates no tag again.
    params2, body2 = fake.callback(
        add_event(
            state=code.slug, userid="wx_O111_张三", external="wmCustomer2", welcome_code="WC2"
        )
    )
    assert _post(client, params2, body2).status_code == 200
    service.drain()
    assert fake.tag_creations == 1 and len(fake.marks) == 2

    # 5. A loss: counted against the code and shown in the funnel.
    lost = {
        "CreateTime": str(int(time.time())),
        "Event": "change_external_contact",
        "ChangeType": "del_follow_user",
        "UserID": "wx_O111_张三",
        "ExternalUserID": "wmCustomer1",
    }
    assert _post(client, *fake.callback(lost)).status_code == 200
    with Session(get_engine(db_url)) as session:
        assert session.get(ChannelCode, code.id).losses_count == 1
        rows = funnel(
            session, actor=users[Role.ADMIN], start=today, end=today, group_by=GroupBy.CODE
        )
        assert funnel_total(rows).counts[EventType.LOSS] == 1

    # 6. A group join of a customer who came through the code: a group event for it.
    joined = {
        "CreateTime": str(int(time.time())),
        "Event": "change_external_chat",
        "ChatId": "wrChat1",
        "ChangeType": "update",
        "UpdateDetail": "add_member",
        "JoinScene": "3",
        "MemChangeCnt": "2",
        "MemChangeList": "<Item>wmCustomer2</Item><Item>wmStranger</Item>",
    }
    assert _post(client, *fake.callback(joined)).status_code == 200
    assert _count(db_url, ChannelEvent, ChannelEvent.event_type == EventType.JOIN_GROUP) == 1


def test_forged_foreign_and_stale_callbacks_get_403_and_write_nothing(
    db_url: str, fake: FakeWeCom, world
) -> None:
    _, _, code, client = world
    event = add_event(state=code.slug, userid="wx_O111_张三", external="wmX", welcome_code="W")
    params, body = fake.callback(event)
    forged = {**params, "msg_signature": "0" * 40}
    other_corp = WeComCrypto(TOKEN, AES_KEY, "wwothercorp")
    stale = fake.callback(event, timestamp=int(time.time()) - 400)
    for p, b in [(forged, body), fake.callback(event, crypto=other_corp), stale]:
        assert _post(client, p, b).status_code == 403
    assert client.post("/wecom/callback", params=params, content=b"<xml>").status_code == 403
    assert _count(db_url, WeComCallback) == 0 and _count(db_url, ChannelEvent) == 0
    # the URL check answers the decrypted echo, and only when signed
    from core.channels.wecom.crypto import signature

    ts = str(int(time.time()))
    echo = fake.crypto.encrypt("echo-123")
    good = {"msg_signature": signature(TOKEN, ts, "n", echo), "timestamp": ts, "nonce": "n"}
    assert client.get("/wecom/callback", params={**good, "echostr": echo}).text == "echo-123"
    bad = {**good, "msg_signature": "1" * 40, "echostr": echo}
    assert client.get("/wecom/callback", params=bad).status_code == 403


def test_a_callback_not_stored_in_time_gets_503_and_its_resend_is_stored_once(
    db_url: str, fake: FakeWeCom, world, monkeypatch
) -> None:
    """The route never waits past WeCom's 5 s: a callback the writer has not stored in time
    is answered 503 (WeCom re-sends it), and the writer then skips it rather than storing
    an event nobody was told about; the re-sent copy is stored once."""
    from core.channels.wecom import callbacks
    from ui import routes as routes_module

    _, _, code, client = world
    working = callbacks.writer
    stalled = callbacks.CallbackWriter(threads=0)  # takes callbacks, stores none yet
    monkeypatch.setattr(callbacks, "writer", lambda: stalled)
    monkeypatch.setattr(routes_module, "CALLBACK_ANSWER_SECONDS", 0.2)
    event = add_event(state=code.slug, userid="wx_O111_张三", external="wmSlow", welcome_code="WS")
    params, body = fake.callback(event)
    began = time.monotonic()
    assert _post(client, params, body).status_code == 503
    assert time.monotonic() - began < 2
    stalled._write([stalled.inbox.get_nowait()])  # the writer catches up: nothing stored
    assert _count(db_url, WeComCallback) == 0 and _count(db_url, ChannelEvent) == 0

    monkeypatch.setattr(callbacks, "writer", working)
    assert _post(client, params, body).status_code == 200  # WeCom re-sends
    assert _post(client, params, body).status_code == 200  # and once more: a replay
    assert _count(db_url, ChannelEvent, ChannelEvent.event_type == EventType.ADD_FRIEND) == 1


def test_busy_wecom_expired_tokens_and_edits(db_url: str, fake: FakeWeCom, world) -> None:
    users, staff, code, _ = world
    fake.busy_rate = 0.5
    service.drain()
    fake.busy_rate = 0.0
    for _ in range(10):  # a call still failing waits for its retry time: bring it forward
        with Session(get_engine(db_url)) as session:
            session.execute(sa.update(WeComOutbox).values(next_at=sa.func.current_timestamp()))
            session.commit()
        service.drain()
    assert len(fake.contact_ways) == 1
    fetches = fake.token_fetches
    fake.expire_tokens()
    with Session(get_engine(db_url)) as session:
        restaff_code(
            session,
            actor=users[Role.CITY_PLANNER],
            code_id=code.id,
            staff_ids=(staff["李四"], staff["张三"]),
        )
    service.drain()
    (way,) = fake.contact_ways.values()
    assert way["user"] == ["wx_O111_李四", "wx_O111_张三"]
    assert fake.token_fetches == fetches + 1  # 42001 → one new token
    with Session(get_engine(db_url)) as session:
        set_code_enabled(session, actor=users[Role.CITY_PLANNER], code_id=code.id, enabled=False)
    service.drain()
    assert fake.contact_ways == {}
    with Session(get_engine(db_url)) as session:
        assert session.get(ChannelCode, code.id).wecom_qr_url is None
        states = session.exec(select(WeComOutbox.state)).all()
    assert set(states) == {OutboxState.DONE}


def test_a_refused_call_is_recorded_and_shown(db_url: str, fake: FakeWeCom, world) -> None:
    users, _, code, client = world
    service.drain()
    params, body = fake.callback(
        add_event(state=code.slug, userid="wx_O111_张三", external="wmY", welcome_code="")
    )
    _post(client, params, body)
    fake.tags.clear()
    with Session(get_engine(db_url)) as session:
        session.execute(sa.delete(WeComOutbox))
        session.commit()
        from core.channels.wecom_queue import GREET, enqueue
        from db.engine import write_transaction

        with write_transaction(session):
            enqueue(
                session,
                GREET,
                {"userid": "u", "external_userid": "e", "welcome_code": "used", "welcome": "hi"},
            )
    fake.welcome_times["used"] = time.time()  # WeCom answers 41051: not retryable
    service.drain()
    with Session(get_engine(db_url)) as session:
        view = service.overview(session, actor=users[Role.ADMIN])
    assert view.live and view.outbox[OutboxState.FAILED] == 1
    assert "41051" in view.failures[0].error
    assert view.last_callback.startswith("change_external_contact/add_external_contact")


def test_a_burst_of_adds_is_greeted_before_slow_tag_calls_queued_earlier(
    db_url: str, fake: FakeWeCom, world
) -> None:
    """Welcomes have a lane of their own: 60 tag calls to a slow WeCom queued first do not
    hold up the greetings of the 10 customers who add next."""
    _, _, code, client = world
    service.drain()  # the contact way
    fake.delays["mark_tag"] = 0.3
    for i in range(60):  # adds without a WelcomeCode: tag calls only
        _post(
            client,
            *fake.callback(add_event(state=code.slug, userid="wx_O111_张三", external=f"wmT{i}")),
        )
    for i in range(10):
        _post(
            client,
            *fake.callback(
                add_event(
                    state=code.slug,
                    userid="wx_O111_张三",
                    external=f"wmW{i}",
                    welcome_code=f"WC{i}",
                )
            ),
        )
    assert _count(db_url, WeComOutbox, WeComOutbox.kind == outbox.WELCOME) == 10
    queued = time.time()
    outbox.start_worker()
    try:
        _wait(lambda: len(fake.welcomes) == 10)
        tagged_meanwhile = len(fake.marks)
        _wait(lambda: len(fake.marks) == 70)
    finally:
        outbox.stop_worker()
    assert tagged_meanwhile < 60, "the greetings waited for the tag calls queued before them"
    assert max(fake.welcome_times.values()) < sorted(fake.mark_times)[59]
    assert max(fake.welcome_times.values()) - queued < outbox.WELCOME_TTL.total_seconds()
    assert {c for c, _ in fake.welcomes} == {f"WC{i}" for i in range(10)}


def _wait(done, seconds: float = 20) -> None:
    deadline = time.time() + seconds
    while not done():
        assert time.time() < deadline, "timed out"
        time.sleep(0.02)


def test_a_stale_welcome_code_is_not_used_but_recorded_as_expired(
    db_url: str, fake: FakeWeCom, world
) -> None:
    users, _, code, client = world
    service.drain()
    late = int(time.time()) - 25  # WeCom keeps a WelcomeCode ~20 s
    params, body = fake.callback(
        add_event(
            state=code.slug, userid="wx_O111_张三", external="wmLate", welcome_code="WCL", at=late
        )
    )
    assert _post(client, params, body).status_code == 200
    assert _count(db_url, ChannelEvent, ChannelEvent.event_type == EventType.ADD_FRIEND) == 1
    assert service.drain() == 2
    assert fake.welcomes == [] and len(fake.marks) == 1  # tagged all the same
    with Session(get_engine(db_url)) as session:
        row = session.exec(select(WeComOutbox).where(WeComOutbox.kind == outbox.WELCOME)).one()
        assert row.state == OutboxState.EXPIRED and "欢迎码已过期" in row.error
        assert "WCL" not in str(row.payload) and "wmLate" not in str(row.payload)
        view = service.overview(session, actor=users[Role.ADMIN])
    assert view.outbox[OutboxState.EXPIRED] == 1
    assert view.failures[0].kind == outbox.WELCOME and "未发送欢迎语" in view.failures[0].error


def test_hand_over_transfers_in_wecom_and_shows_the_outcome(
    db_url: str, fake: FakeWeCom, world
) -> None:
    users, staff, _code, client = world
    service.drain()
    fake.customers["wx_O111_张三"] = ["wmA", "wmB"]
    with Session(get_engine(db_url)) as session:
        hand_over(
            session,
            actor=users[Role.CITY_PLANNER],
            from_staff_id=staff["张三"],
            to_staff_id=staff["李四"],
        )
    service.drain()
    assert fake.transfers == [("wx_O111_张三", "wx_O111_李四", ("wmA", "wmB"))]
    assert next(iter(fake.contact_ways.values()))["user"] == ["wx_O111_李四"]
    failed = {
        "CreateTime": str(int(time.time())),
        "Event": "change_external_contact",
        "ChangeType": "transfer_fail",
        "FailReason": "customer_refused",
        "UserID": "wx_O111_李四",
        "ExternalUserID": "wmB",
    }
    assert _post(client, *fake.callback(failed)).status_code == 200
    with Session(get_engine(db_url)) as session:
        notes = service.handover_feedback(session, actor=users[Role.CITY_PLANNER])
    assert [n.what for n in notes] == ["继承失败", "继承请求"]
    assert "客户拒绝" in notes[0].detail and "2 位" in notes[1].detail


def test_without_settings_nothing_is_queued_and_the_route_is_off(db_url: str, monkeypatch) -> None:
    from core.platform.settings import get_settings

    for name in ("WECOM_CORP_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    with Session(get_engine(db_url), expire_on_commit=False) as session:
        tree = make_tree(session)
        users = make_users(session)
        zhang = make_staff(session, "O111", "张三")
        code = create_code(
            session,
            actor=users[Role.DESIGNER],
            data=CodeInput(
                name="码",
                channel_type=ChannelType.COUNTER,
                outlet_id=tree.outlets["O111"].id,
                staff_ids=(zhang,),
            ),
        )
    assert _count(db_url, WeComOutbox) == 0
    client = TestClient(Starlette(routes=routes), follow_redirects=False)
    assert client.post("/wecom/callback", content=b"<xml/>").status_code == 404
    scan = client.get(f"/c/{code.slug}")
    assert scan.headers["location"].startswith("https://work.weixin.qq.com/ca/O111-")


def test_the_server_makes_its_calls_from_a_worker_process_it_restarts_and_stops(
    db_url: str, fake: FakeWeCom, world
) -> None:
    """WECOM_WORKER=process (the default): the server's lifespan starts
    `python -m core wecom-worker` as its child; a callback wakes it, it greets and tags in
    its own process; if it dies it comes back; stopping the server stops it."""
    users, _, code, client = world
    assert service.start()
    try:
        sidecar = service._sidecar
        assert sidecar is not None and sidecar.alive()
        first_pid = sidecar.pid
        assert "独立进程运行中" in service.worker_state()
        params, body = fake.callback(
            add_event(state=code.slug, userid="wx_O111_张三", external="wmP1", welcome_code="P1")
        )
        assert _post(client, params, body).status_code == 200
        _wait(lambda: [c for c, _ in fake.welcomes] == ["P1"] and len(fake.marks) == 1)
        assert fake.contact_ways, "the code queued before start became a contact way too"

        sidecar.process.kill()  # a crash: the server starts it again
        _wait(lambda: sidecar.alive() and sidecar.pid != first_pid)
        params, body = fake.callback(
            add_event(state=code.slug, userid="wx_O111_张三", external="wmP2", welcome_code="P2")
        )
        assert _post(client, params, body).status_code == 200
        _wait(lambda: "P2" in [c for c, _ in fake.welcomes])
        assert "已重启 1 次" in service.worker_state()
        with Session(get_engine(db_url)) as session:
            view = service.overview(session, actor=users[Role.ADMIN])
        assert view.worker == service.worker_state()
    finally:
        process = service._sidecar.process if service._sidecar else None
        began = time.monotonic()
        service.stop()
    assert process is not None and process.returncode == 0  # stopped in order, not killed
    assert time.monotonic() - began < 9  # within the 10 s it is given before it is killed
    assert service._sidecar is None


def test_the_worker_command_needs_wecom_settings(db_url: str, capsys) -> None:
    from core.cli import main

    assert main(["wecom-worker"]) == 1
    assert "未配置企业微信" in capsys.readouterr().err


def test_existing_codes_get_their_contact_ways_in_one_go(
    db_url: str, fake: FakeWeCom, world, monkeypatch, capsys
) -> None:
    """Codes made before live mode was switched on: the admin (or `python -m core
    wecom-sync-codes`) queues a contact way for each, once, audited; others may not."""
    from core.cli import main
    from core.platform.errors import PermissionDenied, ValidationFailed
    from core.platform.settings import get_settings
    from db.models import AuditLog

    users, staff, live_code, _ = world
    service.drain()  # the live code's own contact way
    names = ("WECOM_CORP_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY")
    saved = {n: os.environ[n] for n in names}
    for name in names:
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    with Session(get_engine(db_url), expire_on_commit=False) as session:
        old = [
            create_code(
                session,
                actor=users[Role.CITY_PLANNER],
                data=CodeInput(
                    name=f"旧码{i}",
                    channel_type=ChannelType.COUNTER,
                    outlet_id=live_code.outlet_id,
                    staff_ids=(staff["李四"],),
                ),
            )
            for i in range(3)
        ]
        with pytest.raises(ValidationFailed, match="未配置企业微信"):
            service.sync_contact_ways(session, actor=users[Role.ADMIN])
    for name, value in saved.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with Session(get_engine(db_url), expire_on_commit=False) as session:
        for role in (Role.CITY_PLANNER, Role.DESIGNER, Role.OUTLET_MANAGER):
            with pytest.raises(PermissionDenied):
                service.sync_contact_ways(session, actor=users[role])
        assert service.overview(session, actor=users[Role.ADMIN]).codes_without_contact_way == 3
        assert service.sync_contact_ways(session, actor=users[Role.ADMIN]) == 3
        assert service.sync_contact_ways(session, actor=users[Role.ADMIN]) == 0  # queued once
        audit = session.exec(select(AuditLog).where(AuditLog.action == "code.wecom_sync")).all()
        assert [a.after["count"] for a in audit] == [3, 0]
    assert main(["wecom-sync-codes"]) == 0
    assert "已为 0 个活码排队" in capsys.readouterr().out
    service.drain()
    assert sorted(w["remark"] for w in fake.contact_ways.values()) == [
        "旧码0",
        "旧码1",
        "旧码2",
        "柜台码",
    ]
    with Session(get_engine(db_url)) as session:
        assert all(session.get(ChannelCode, c.id).wecom_qr_url for c in old)
        assert service.overview(session, actor=users[Role.ADMIN]).codes_without_contact_way == 0
