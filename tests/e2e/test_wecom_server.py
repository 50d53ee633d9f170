"""The live WeCom loop through the real server (`streamlit run app.py`) against a loopback
fake WeCom: the server's worker process turns a code into a contact way (the scan then
goes to its QR page), a signed add callback is recorded, greeted with the code's text and
tagged, and when the server stops its worker goes with it. No browser needed."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlmodel import Session, select

from core.channels.codes import CodeInput, create_code
from core.platform.settings import get_settings
from db.engine import get_engine
from db.migrate import upgrade_to_head
from db.models import ChannelCode, ChannelEvent, ChannelType, EventType, OrgUnit, Role
from tests.e2e.app_server import running_apps
from tests.factories import make_staff, make_tree, make_user
from tests.wecom_fake import AES_KEY, CORP_ID, SECRET, TOKEN, FakeWeCom, add_event


@pytest.fixture
def fake() -> FakeWeCom:
    server = FakeWeCom().start()
    yield server
    server.stop()


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _qr_url(url: str, code_id: int) -> str | None:
    with Session(get_engine(url)) as session:
        return session.get(ChannelCode, code_id).wecom_qr_url


def _wait(done, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while not done():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_a_code_becomes_a_contact_way_and_a_new_friend_is_greeted_by_the_server(
    tmp_path: Path, fake: FakeWeCom, monkeypatch
) -> None:
    env = {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_SECRET": SECRET,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": fake.api_base,
        "DEMO_MODE": "0",
    }
    url = f"sqlite:///{tmp_path / 'wecom.db'}"
    upgrade_to_head(url)
    for name, value in env.items():  # the code below queues its contact way (live mode)
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with Session(get_engine(url), expire_on_commit=False) as session:
        make_tree(session)
        staff = make_staff(session, "O111", "张三")
        outlet = session.exec(select(OrgUnit).where(OrgUnit.code == "O111")).one()
        code = create_code(
            session,
            actor=make_user(session, "designer", Role.DESIGNER),
            data=CodeInput(
                name="柜台码",
                channel_type=ChannelType.COUNTER,
                outlet_id=outlet.id,
                staff_ids=(staff,),
                tags=("网点柜台",),
                welcome_message="您好，我是{网点名称}的{员工姓名}",
            ),
        )
    get_settings.cache_clear()

    with running_apps(url, [tmp_path / "server.log"], env=env) as (app,):
        workers = _children(app.process.pid)
        assert len(workers) == 1, "the server runs its calls to WeCom in one worker process"
        _wait(lambda: len(fake.contact_ways) == 1)
        _wait(lambda: _qr_url(url, code.id) is not None)
        qr_url = _qr_url(url, code.id)
        way = next(iter(fake.contact_ways.values()))
        assert way["state"] == code.slug and way["user"] == ["wx_O111_张三"]
        scan = httpx.get(f"{app.base}/c/{code.slug}", follow_redirects=False)
        assert scan.status_code in (302, 303, 307) and scan.headers["location"] == qr_url

        params, body = fake.callback(
            add_event(state=code.slug, userid="wx_O111_张三", external="wmE2E", welcome_code="WE")
        )
        answer = httpx.post(f"{app.base}/wecom/callback", params=params, content=body)
        assert answer.status_code == 200 and answer.text == "success"
        _wait(lambda: fake.welcomes and fake.marks)
        assert fake.welcomes == [("WE", f"您好，我是{outlet.name}的张三")]
        assert fake.marks[0][:2] == ("wx_O111_张三", "wmE2E")
        with Session(get_engine(url)) as session:
            friends = session.exec(
                select(ChannelEvent).where(ChannelEvent.event_type == EventType.ADD_FRIEND)
            ).all()
            assert [e.code_id for e in friends] == [code.id]
            assert session.get(ChannelCode, code.id).adds_count == 1
        # the same callback again (a replay): answered, nothing new
        assert httpx.post(f"{app.base}/wecom/callback", params=params, content=body).text == (
            "success"
        )
    get_engine(url).dispose()
    _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), seconds=15)
    assert len(fake.welcomes) == 1
