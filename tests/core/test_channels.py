"""Channel codes: creation, unguessable slugs, scans through the assignment rules, dead
codes, events (hashed customers), the funnel, batches, handovers, permissions."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.channels import codes as channels
from core.channels import events
from core.channels.codes import CodeInput, batch_codes, create_code, flag_dead_codes
from core.channels.events import record_event, scan
from core.channels.funnel import GroupBy, funnel, funnel_total, import_events
from core.channels.staff import hand_over
from core.platform.clock import SHANGHAI
from core.platform.errors import PermissionDenied, ValidationFailed
from db.engine import get_engine, write_transaction
from db.models import (
    AssignmentRule,
    ChannelCode,
    ChannelEvent,
    ChannelType,
    EventType,
    Notification,
    Role,
    Staff,
)
from tests.factories import make_staff, make_tree, make_users

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=SHANGHAI)


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    users = make_users(session)
    staff = {name: make_staff(session, "O111", name) for name in ("张三", "李四", "王五")}
    staff["赵六"] = make_staff(session, "O211", "赵六")
    return tree, users, staff


def code_for(session: Session, world, **changes: object):
    tree, users, staff = world
    data = CodeInput(
        name="柜台码",
        channel_type=ChannelType.COUNTER,
        outlet_id=tree.outlets["O111"].id,
        staff_ids=(staff["张三"], staff["李四"]),
        fallback_staff_ids=(staff["王五"],),
    )
    fields = {**data.__dict__, **changes}
    return create_code(session, actor=users[Role.DESIGNER], data=CodeInput(**fields))


def test_slugs_are_unique_and_unguessable() -> None:
    slugs = [channels.new_slug() for _ in range(20_000)]
    assert len(set(slugs)) == len(slugs)
    assert all(len(s) == 10 and set(s) <= set(channels.SLUG_ALPHABET) for s in slugs)
    letters = Counter("".join(slugs))
    assert len(letters) == len(channels.SLUG_ALPHABET)  # every symbol used: no fixed parts
    assert (
        max(letters.values()) / min(letters.values()) < 1.2
    )  # and evenly (random, not sequential)


def test_url_comes_from_the_configured_base(session: Session, world, monkeypatch) -> None:
    monkeypatch.setenv("BASE_URL", "https://yh.example.cn/")
    channels.get_settings.cache_clear()
    code = code_for(session, world)
    assert code.url == f"https://yh.example.cn/c/{code.slug}"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"staff_ids": ()}, "staff"),
        ({"rule": AssignmentRule.DAILY_CAP}, "daily_cap"),
        ({"active_from": date(2026, 12, 2), "active_until": date(2026, 12, 1)}, "active"),
        ({"slots": {"weekly": {"0": [["18:00", "09:00"]]}}}, "slots"),
        ({"slots": {"weekly": {"7": [["09:00", "18:00"]]}}}, "slots"),
        ({"slots": {"overrides": {"2026-13-01": []}}}, "slots"),
        ({"slots": {"overrides": {"2026-12-08": [["8点", "20点"]]}}}, "slots"),
    ],
)
def test_bad_codes_are_refused(session: Session, world, changes: dict, field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        code_for(session, world, **changes)
    assert field in [p.field for p in info.value.problems]


def test_staff_of_another_city_or_who_left_are_refused(session: Session, world) -> None:
    _, _, staff = world
    with pytest.raises(ValidationFailed, match="本市"):
        code_for(session, world, staff_ids=(staff["赵六"],))
    gone = make_staff(session, "O111", "孙七", active=False)
    with pytest.raises(ValidationFailed, match="离职"):
        code_for(session, world, staff_ids=(gone,))


def test_scans_take_turns_respect_the_cap_and_fall_back(session: Session, world) -> None:
    _, _, staff = world
    code = code_for(session, world, rule=AssignmentRule.DAILY_CAP, daily_cap=2)
    picks = [scan(session, code.slug, now=NOON + timedelta(minutes=i)) for i in range(6)]
    assert [p.status for p in picks] == [302] * 6
    names = {v: k for k, v in staff.items()}
    assert [names[p.staff_id] for p in picks] == ["张三", "李四", "张三", "李四", "王五", "王五"]
    assert picks[0].location.endswith("O111-张三")
    next_day = scan(session, code.slug, now=NOON + timedelta(days=1))
    assert names[next_day.staff_id] == "张三"  # caps reset with the day; after 李四 comes 张三
    session.rollback()
    assert session.get(ChannelCode, code.id).scans_count == 7


def test_scans_side_by_side_are_each_counted_once_and_take_turns(
    session: Session, world, db_url: str
) -> None:
    """Scans run in worker threads and in several app processes: none may be lost."""
    code = code_for(session, world, fallback_staff_ids=())
    threads, each = 6, 8

    def scans(thread: int) -> list[int]:
        with Session(get_engine(db_url), expire_on_commit=False) as own:
            return [
                scan(own, code.slug, now=NOON + timedelta(seconds=thread, milliseconds=i)).staff_id
                for i in range(each)
            ]

    with ThreadPoolExecutor(threads) as pool:
        picks = [p for batch in pool.map(scans, range(threads)) for p in batch]
    session.rollback()
    total = threads * each
    assert session.get(ChannelCode, code.id).scans_count == total
    assert (
        session.execute(sa.select(sa.func.count()).select_from(ChannelEvent)).scalar_one() == total
    )
    assert sorted(Counter(picks).values()) == [total // 2, total // 2]  # strict round robin


def test_unknown_and_dead_codes(session: Session, world) -> None:
    _, users, _staff = world
    assert scan(session, "nosuchcode").status == 404
    ended = code_for(session, world, active_until=date(2026, 11, 1))
    answer = scan(session, ended.slug, now=NOON)
    assert answer.status == 410 and "有效期" in answer.message
    capped = code_for(session, world, max_adds=1)
    record_event(
        session, slug=capped.slug, customer_id="wm_1", event_type=EventType.ADD_FRIEND, at=NOON
    )
    assert scan(session, capped.slug, now=NOON).status == 410
    assert flag_dead_codes(session, today=NOON.date()) == 2
    assert flag_dead_codes(session, today=NOON.date()) == 0  # told once per reason
    session.rollback()
    titles = session.exec(
        select(Notification.title).where(Notification.user_id == users[Role.DESIGNER].user_id)
    ).all()
    assert sorted(titles) == sorted([f"活码「{ended.name}」已失效", f"活码「{capped.name}」已失效"])


def test_events_store_only_a_hash_and_count_once(session: Session, world) -> None:
    code = code_for(session, world, welcome_message="您好{客户昵称}，我是{网点名称}的{员工姓名}")
    staff_userid = session.exec(select(Staff.wecom_userid).where(Staff.name == "李四")).one()
    answer = record_event(
        session,
        slug=code.slug,
        customer_id="wmABCDEF123",
        event_type=EventType.ADD_FRIEND,
        at=NOON,
        staff_userid=staff_userid,
        nickname="小王",
    )
    assert (
        answer.recorded
        and answer.welcome == "您好小王，我是O111支局的李四"
        and "网点柜台" not in answer.tags
    )
    again = record_event(
        session, slug=code.slug, customer_id="wmABCDEF123", event_type=EventType.ADD_FRIEND, at=NOON
    )
    assert not again.recorded
    session.rollback()
    stored = session.exec(select(ChannelEvent.customer)).all()
    assert stored == [events.hash_customer("wmABCDEF123")] and "wmABCDEF123" not in stored[0]
    assert session.get(ChannelCode, code.id).adds_count == 1


def test_an_event_repeated_in_a_file_or_across_files_is_stored_once(
    session: Session, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "EVENT_BATCH", 2)  # the repeats straddle statements
    _tree, users, _staff = world
    code = code_for(session, world)
    friend = f"2026-11-21 10:05:00,{code.slug},wm1,加好友"
    first = "\n".join(
        ["时间,活码,客户ID,事件", friend, f"2026-11-21 10:00:00,{code.slug},wm1,扫码", friend]
    )
    report = import_events(
        session, actor=users[Role.DESIGNER], data=first.encode(), filename="a.csv"
    )
    assert (report.created, report.duplicates) == (2, 1)
    second = "\n".join(
        ["时间,活码,客户ID,事件", friend, f"2026-11-21 10:06:00,{code.slug},wm2,加好友"]
    )
    report = import_events(
        session, actor=users[Role.DESIGNER], data=second.encode(), filename="b.csv"
    )
    assert (report.created, report.duplicates) == (1, 1)
    session.expire_all()
    assert session.get(ChannelCode, code.id).adds_count == 2
    assert len(session.exec(select(ChannelEvent.id)).all()) == 3


def test_a_friend_added_elsewhere_meanwhile_is_not_lost_from_the_count(
    session: Session, world, db_url: str
) -> None:
    code = session.get(ChannelCode, code_for(session, world).id)
    session.commit()  # `code` now holds adds_count 0, as an import holds it while parsing
    with Session(get_engine(db_url), expire_on_commit=False) as other:  # a live callback
        record_event(
            other, slug=code.slug, customer_id="wmA", event_type=EventType.ADD_FRIEND, at=NOON
        )
    with write_transaction(session):
        new = events.NewEvent(code, NOON, EventType.ADD_FRIEND, events.hash_customer("wmB"), None)
        assert events.add_events(session, [new], "import") == 1
    with Session(get_engine(db_url)) as fresh:
        assert fresh.get(ChannelCode, code.id).adds_count == 2
    assert code.adds_count == 2


def test_import_hashes_customers_all_or_nothing_and_the_funnel_counts(
    session: Session, world
) -> None:
    _tree, users, _staff = world
    counter = code_for(session, world)
    poster = code_for(session, world, name="海报码", channel_type=ChannelType.POSTER)
    lines = ["时间,活码,客户ID,事件"]
    for i in range(4):
        lines.append(f"2026-11-2{i} 10:00:00,{counter.slug},wm{i},扫码")
    lines += [
        f"2026-11-21 10:05:00,{counter.slug},wm1,加好友",
        f"2026-11-21 10:06:00,{counter.slug},wm1,进群",
        f"2026-11-22 09:00:00,{poster.slug},wm9,scan",
        f"2026-11-22 09:01:00,{poster.slug},wm9,add_friend",
        f"2026-11-23 15:00:00,{counter.slug},wm1,转化",
    ]
    bad = "\n".join([*lines, "2026-11-23 15:00:00,unknown,wm1,转化", "昨天,x,y,z"]).encode("gbk")
    report = import_events(session, actor=users[Role.DESIGNER], data=bad, filename="events.csv")
    assert [p.line for p in report.problems] == [11, 12]
    assert session.exec(select(ChannelEvent)).first() is None
    good = "\n".join(lines).encode("utf-8")
    assert (
        import_events(session, actor=users[Role.DESIGNER], data=good, filename="events.csv").created
        == 9
    )
    assert (
        import_events(
            session, actor=users[Role.DESIGNER], data=good, filename="events.csv"
        ).duplicates
        == 9
    )
    rows = {
        r.key: r
        for r in funnel(
            session,
            actor=users[Role.ADMIN],
            start=date(2026, 11, 20),
            end=date(2026, 11, 30),
            group_by=GroupBy.CHANNEL_TYPE,
        )
    }
    counts = rows["网点柜台"].counts
    assert [
        counts[e]
        for e in (EventType.SCAN, EventType.ADD_FRIEND, EventType.JOIN_GROUP, EventType.CONVERT)
    ] == [4, 1, 1, 1]
    assert rows["网点柜台"].rate(EventType.ADD_FRIEND, EventType.SCAN) == 0.25
    assert rows["海报"].counts[EventType.ADD_FRIEND] == 1
    total = funnel_total(list(rows.values()))
    assert total.counts[EventType.ADD_FRIEND] == 2 and total.counts[EventType.SCAN] == sum(
        r.counts[EventType.SCAN] for r in rows.values()
    )
    narrow = funnel(
        session,
        actor=users[Role.ADMIN],
        start=date(2026, 11, 22),
        end=date(2026, 11, 22),
        group_by=GroupBy.CODE,
    )
    assert {r.key: r.counts[EventType.SCAN] for r in narrow} == {"柜台码": 1, "海报码": 1}
    assert funnel(
        session,
        actor=users[Role.OUTLET_MANAGER],
        start=date(2026, 11, 20),
        end=date(2026, 11, 30),
        group_by=GroupBy.CODE,
    )
    planner_c2 = users[Role.CITY_PLANNER]  # C1 planner sees C1 codes; nobody else's
    assert funnel(
        session,
        actor=planner_c2,
        start=date(2026, 11, 20),
        end=date(2026, 11, 30),
        group_by=GroupBy.CODE,
    )


def test_batch_per_outlet_and_per_staff_reuses_on_a_second_run(session: Session, world) -> None:
    tree, users, _staff = world
    make_staff(session, "O112", "钱八")
    first = batch_codes(
        session, actor=users[Role.DESIGNER], city_id=tree.cities["C1"].id, per="outlet"
    )
    assert [c.outlet_name for c in first.created] == [
        "O111支局",
        "O112支局",
    ]  # outlets without staff get none
    again = batch_codes(
        session, actor=users[Role.DESIGNER], city_id=tree.cities["C1"].id, per="outlet"
    )
    assert again.created == [] and len(again.reused) == 2
    per_staff = batch_codes(
        session, actor=users[Role.CITY_PLANNER], city_id=tree.cities["C1"].id, per="staff"
    )
    assert len(per_staff.created) == 4 and all("·" in c.name for c in per_staff.created)
    with pytest.raises(PermissionDenied):
        batch_codes(session, actor=users[Role.CITY_PLANNER], city_id=tree.cities["C2"].id)
    with pytest.raises(PermissionDenied):
        batch_codes(session, actor=users[Role.OUTLET_MANAGER], city_id=tree.cities["C1"].id)


def test_handover_moves_customers_and_pool_places(session: Session, world) -> None:
    _, users, staff = world
    code = code_for(session, world)
    for i in range(3):
        scan(session, code.slug, now=NOON + timedelta(minutes=i))
    zhang = session.get(Staff, staff["张三"]).wecom_userid
    record_event(
        session,
        slug=code.slug,
        customer_id="wm7",
        event_type=EventType.ADD_FRIEND,
        at=NOON,
        staff_userid=zhang,
    )
    moved = hand_over(
        session,
        actor=users[Role.CITY_PLANNER],
        from_staff_id=staff["张三"],
        to_staff_id=staff["王五"],
    )
    assert moved == 1
    session.rollback()
    assert not session.get(Staff, staff["张三"]).active
    assert (
        session.exec(
            select(sa.func.count())
            .select_from(ChannelEvent)
            .where(ChannelEvent.staff_id == staff["张三"])
        ).one()
        == 0
    )
    after = scan(session, code.slug, now=NOON + timedelta(hours=1))
    assert after.staff_id in (staff["李四"], staff["王五"])
    with pytest.raises(ValidationFailed):
        hand_over(
            session,
            actor=users[Role.CITY_PLANNER],
            from_staff_id=staff["李四"],
            to_staff_id=staff["赵六"],
        )


def test_who_sees_and_makes_which_codes(session: Session, world) -> None:
    tree, users, staff = world
    code_for(session, world)
    assert (
        len(channels.list_codes(session, actor=users[Role.OUTLET_MANAGER])) == 1
    )  # their own outlet's
    assert len(channels.list_codes(session, actor=users[Role.CITY_PLANNER])) == 1
    data = CodeInput("外市码", ChannelType.COUNTER, tree.outlets["O211"].id, (staff["赵六"],))
    assert (
        channels.create_code(session, actor=users[Role.ADMIN], data=data).outlet_name == "O211支局"
    )
    assert [
        c.outlet_name for c in channels.list_codes(session, actor=users[Role.CITY_PLANNER])
    ] == ["O111支局"]
    with pytest.raises(PermissionDenied):
        channels.create_code(session, actor=users[Role.CITY_PLANNER], data=data)
    with pytest.raises(PermissionDenied):
        channels.create_code(session, actor=users[Role.OUTLET_MANAGER], data=data)


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("2099-01-01 10:00:00", "时间不能晚于现在（上海时间"),
        ("0001-01-01 00:00:00", "时间早于允许的最早日期 2015-01-01"),
        ("9999-12-31 23:59:59", "时间不能晚于现在（上海时间"),
    ],
)
def test_an_imported_event_outside_the_window_is_refused_and_not_counted(
    session: Session, world, when: str, reason: str
) -> None:
    _tree, users, _staff = world
    code = code_for(session, world, max_adds=1)
    data = "\n".join(
        [
            "时间,活码,客户ID,事件",
            f"2026-11-21 10:00:00,{code.slug},wm1,扫码",
            f"{when},{code.slug},wm2,加好友",
        ]
    )
    report = import_events(
        session, actor=users[Role.DESIGNER], data=data.encode(), filename="e.csv"
    )
    assert [p.line for p in report.problems] == [3]
    assert report.problems[0].reason.startswith(reason)
    session.expire_all()
    assert session.get(ChannelCode, code.id).adds_count == 0
    assert session.exec(select(ChannelEvent)).first() is None
    assert scan(session, code.slug, now=NOON).status == 302  # the cap was not reached


@pytest.mark.parametrize(
    "at",
    [
        datetime(2099, 1, 1, 10, 0, tzinfo=SHANGHAI),
        datetime(1, 1, 1, 0, 0, tzinfo=SHANGHAI),
        datetime(9999, 12, 31, 23, 59, tzinfo=SHANGHAI),
    ],
)
def test_a_live_event_outside_the_window_is_refused_and_not_counted(
    session: Session, world, at: datetime
) -> None:
    code = code_for(session, world, max_adds=1)
    with pytest.raises(ValidationFailed) as refused:
        record_event(
            session, slug=code.slug, customer_id="wm1", event_type=EventType.ADD_FRIEND, at=at
        )
    assert "时间" in refused.value.message and refused.value.problems[0].field == "at"
    new = events.NewEvent(code, at, EventType.ADD_FRIEND, events.hash_customer("wm2"), None)
    with pytest.raises(ValidationFailed), write_transaction(session):
        events.add_events(session, [new], "import")
    session.expire_all()
    assert session.get(ChannelCode, code.id).adds_count == 0
    assert session.exec(select(ChannelEvent)).first() is None
    assert scan(session, code.slug, now=NOON).status == 302
