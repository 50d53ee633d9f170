"""Staff metrics: the registry, the staff import and the staff boards, rule by rule, on
both databases (transfer mid-period, leaver, a metric added at runtime, money, ties)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from core.metrics.importing import import_metrics
from core.metrics.rankings import BoardQuery, leaderboard
from core.metrics.registry import Level, MetricForm, save_metric, specs
from core.metrics.staff_importing import import_staff_metrics
from core.metrics.staff_rankings import StaffBoardQuery, staff_detail, staff_leaderboard
from core.metrics.staff_targets import import_staff_targets
from core.metrics.values import MetricKind
from core.platform.errors import PermissionDenied, ValidationFailed
from core.platform.periods import Period
from db.models import AuditLog, Role, Staff
from tests.factories import make_staff, make_tree, make_users, metrics_csv

D = date(2026, 11, 10)


def day(n: int) -> date:
    return D + timedelta(days=n)


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    users = make_users(session)
    staff = {
        name: make_staff(session, outlet, name)
        for outlet, name in [
            ("O111", "a"),
            ("O111", "b"),
            ("O111", "c"),
            ("O112", "d"),
            ("O211", "e"),
        ]
    }
    return tree, users, staff


def code(outlet: str, name: str) -> str:
    return f"wx_{outlet}_{name}"


def staff_csv(header: str, rows: list[tuple]) -> bytes:
    lines = [header] + [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def load(session: Session, actor, header: str, rows: list[tuple]):
    report = import_staff_metrics(
        session, actor=actor, data=staff_csv(header, rows), filename="s.csv"
    )
    assert report.ok, report.problems
    return report


def board(session, actor, metric, start, end, **kw):
    return staff_leaderboard(
        session, actor=actor, query=StaffBoardQuery(metric, Period(start, end), **kw)
    )


def ranking(b) -> list[tuple[int, str, int]]:
    return [(r.rank, r.name, r.value) for r in b.rows]


H = "date,staff_code,outlet_code,new_friends,total_friends"


def test_registry_is_seeded_with_the_six_unchanged(session: Session, world) -> None:
    found = specs(session, Level.OUTLET)
    assert list(found) == [
        "new_friends",
        "total_friends",
        "groups",
        "group_members",
        "conversions",
        "deposits",
    ]
    assert found["deposits"].is_money and found["total_friends"].kind is MetricKind.STOCK
    assert "groups" not in specs(session, Level.STAFF)


def test_ties_rank_competition_style_listed_by_code(session: Session, world) -> None:
    _, users, _ = world
    admin = users[Role.ADMIN]
    load(
        session,
        admin,
        H,
        [
            (day(0), code("O111", "a"), "O111", 5, 10),
            (day(0), code("O111", "b"), "O111", 9, 10),
            (day(0), code("O111", "c"), "O111", 5, 10),
            (day(0), code("O112", "d"), "O112", 1, 10),
        ],
    )
    b = board(session, admin, "new_friends", day(0), day(0))
    assert ranking(b)[:4] == [(1, "b", 9), (2, "a", 5), (2, "c", 5), (4, "d", 1)]
    assert b.rows[-1].name == "e" and b.rows[-1].value == 0  # active, no data: still ranked
    county = board(
        session, admin, "new_friends", day(0), day(0), outlet_id=world[0].outlets["O111"].id
    )
    assert [r.name for r in county.rows] == ["b", "a", "c"]


def test_stock_is_last_value_and_flow_is_summed_with_rank_change(session: Session, world) -> None:
    _, users, _ = world
    admin = users[Role.ADMIN]
    load(
        session,
        admin,
        H,
        [
            (day(0), code("O111", "a"), "O111", 1, 50),
            (day(1), code("O111", "a"), "O111", 1, 40),
            (day(0), code("O111", "b"), "O111", 3, 45),
            (day(2), code("O111", "a"), "O111", 4, 41),
            (day(3), code("O111", "b"), "O111", 1, 44),
        ],
    )
    flows = board(session, admin, "new_friends", day(2), day(3))
    assert ranking(flows)[:2] == [(1, "a", 4), (2, "b", 1)]
    assert flows.rows[0].previous_rank == 2 and flows.rows[0].change == 1
    stocks = board(session, admin, "total_friends", day(2), day(3))
    assert ranking(stocks)[:2] == [(1, "b", 44), (2, "a", 41)]
    detail = staff_detail(
        session,
        actor=admin,
        staff_id=world[2]["a"],
        metric="new_friends",
        period=Period(day(0), day(3)),
    )
    assert [(d.day, d.value) for d in detail.daily] == [(day(0), 1), (day(1), 1), (day(2), 4)]
    assert detail.total == 6


def test_transfer_mid_period_keeps_history_where_earned(session: Session, world) -> None:
    tree, users, staff = world
    admin = users[Role.ADMIN]
    load(session, admin, H, [(day(0), code("O111", "a"), "O111", 7, 10)])
    moved = session.get(Staff, staff["a"])
    moved.outlet_id = tree.outlets["O112"].id
    session.add(moved)
    session.commit()
    load(session, admin, H, [(day(1), code("O111", "a"), "", 2, 12)])  # blank: current outlet
    o111 = board(session, admin, "new_friends", day(0), day(1), outlet_id=tree.outlets["O111"].id)
    o112 = board(session, admin, "new_friends", day(0), day(1), outlet_id=tree.outlets["O112"].id)
    assert ("a", 7) in [(r.name, r.value) for r in o111.rows]
    assert ("a", 2) in [(r.name, r.value) for r in o112.rows]
    assert next(r for r in o111.rows if r.name == "a").outlet_code == "O111"
    city = board(session, admin, "new_friends", day(0), day(1), city_id=tree.cities["C1"].id)
    assert next(r for r in city.rows if r.name == "a").value == 9  # both stints in the city
    stock = board(session, admin, "total_friends", day(0), day(1), city_id=tree.cities["C1"].id)
    assert next(r for r in stock.rows if r.name == "a").value == 12  # the latest stint's stock
    # the next period: a's old outlet no longer lists them (no report there)
    later = board(session, admin, "new_friends", day(1), day(1), outlet_id=tree.outlets["O111"].id)
    assert "a" not in [r.name for r in later.rows]


def test_leaver_keeps_their_rows_in_periods_they_reported(session: Session, world) -> None:
    tree, users, staff = world
    admin = users[Role.ADMIN]
    load(session, admin, H, [(day(0), code("O111", "c"), "O111", 3, 3)])
    from core.channels.staff import hand_over

    hand_over(session, actor=admin, from_staff_id=staff["c"], to_staff_id=staff["a"])  # 离职继承
    then = board(session, admin, "new_friends", day(0), day(0), outlet_id=tree.outlets["O111"].id)
    row = next(r for r in then.rows if r.name == "c")
    assert row.value == 3 and not row.active and row.rank == 1
    now = board(session, admin, "new_friends", day(1), day(1), outlet_id=tree.outlets["O111"].id)
    assert "c" not in [r.name for r in now.rows]


def test_metric_added_at_runtime_with_money_on_every_board(session: Session, world) -> None:
    _, users, _ = world
    admin = users[Role.ADMIN]
    save_metric(
        session,
        actor=admin,
        form=MetricForm("value_deposits", "价值存款", "元", MetricKind.FLOW, True, True, True, 70),
    )
    audits = session.exec(select(AuditLog).where(AuditLog.action == "metric_def.save")).all()
    assert len(audits) == 1
    load(
        session,
        admin,
        "日期,员工编码,价值存款(元)",
        [
            (day(0), code("O111", "a"), '"1,234.56"'),
            (day(1), code("O111", "a"), "-34.56"),
            (day(0), code("O111", "b"), "1200.00"),
        ],
    )
    b = board(session, admin, "value_deposits", day(0), day(1))
    assert ranking(b)[:2] == [(1, "a", 120000), (1, "b", 120000)]
    assert b.metric.is_money
    outlet_rows = [
        (day(0), "O111", 1, 1, 1, 1, 1, "0"),
        (day(0), "O112", 1, 1, 1, 1, 1, "0"),
    ]
    header = "date,outlet_code,new_friends,total_friends,groups,group_members,conversions,deposits,价值存款\n"
    data = metrics_csv([(*r, v) for r, v in zip(outlet_rows, ["10.5", "20"], strict=True)], header)
    assert import_metrics(session, actor=admin, data=data, filename="o.csv").ok
    ob = leaderboard(
        session, actor=admin, query=BoardQuery("value_deposits", Period(day(0), day(0)))
    )
    assert [(r.code, r.value) for r in ob.rows[:2]] == [("O112", 2000), ("O111", 1050)]
    # deactivated: gone from the boards, refused by name
    save_metric(
        session,
        actor=admin,
        form=MetricForm(
            "value_deposits", "价值存款", "元", MetricKind.FLOW, True, True, True, 70, active=False
        ),
    )
    with pytest.raises(ValidationFailed):
        board(session, admin, "value_deposits", day(0), day(1))


def test_import_is_all_or_nothing_and_names_bad_lines(session: Session, world) -> None:
    _, users, _ = world
    admin = users[Role.ADMIN]
    data = staff_csv(
        H,
        [
            (day(0), code("O111", "a"), "O111", 1, 1),
            (day(0), "nobody", "O111", 1, 1),
            (day(0), code("O111", "a"), "O111", 2, 1),
            (day(0), code("O111", "b"), "O999", 1, 1),
            (day(0), code("O111", "c"), "O111", -1, 1),
            ("2099-01-01", code("O111", "c"), "O111", 1, 1),
        ],
    )
    report = import_staff_metrics(session, actor=admin, data=data, filename="s.csv")
    assert not report.ok
    assert sorted({p.line for p in report.problems}) == [3, 4, 5, 6, 7]
    b = board(session, admin, "new_friends", day(0), day(0))
    assert all(r.value == 0 for r in b.rows)


def test_reimport_replaces_and_moves_the_day_to_the_named_outlet(session: Session, world) -> None:
    tree, users, _ = world
    admin = users[Role.ADMIN]
    load(session, admin, H, [(day(0), code("O111", "a"), "O111", 5, 1)])
    load(session, admin, H, [(day(0), code("O111", "a"), "O112", 6, 1)])
    o111 = board(session, admin, "new_friends", day(0), day(0), outlet_id=tree.outlets["O111"].id)
    o112 = board(session, admin, "new_friends", day(0), day(0), outlet_id=tree.outlets["O112"].id)
    assert next(r for r in o111.rows if r.name == "a").value == 0  # current outlet, nothing earned
    assert next(r for r in o112.rows if r.name == "a").value == 6


def test_scope_manager_sees_own_outlet_staff_only(session: Session, world) -> None:
    tree, users, _ = world
    manager = users[Role.OUTLET_MANAGER]
    own = board(session, manager, "new_friends", day(0), day(0), outlet_id=tree.outlets["O111"].id)
    assert {r.name for r in own.rows} == {"a", "b", "c"} and all(r.is_mine for r in own.rows)
    with pytest.raises(PermissionDenied):
        board(session, manager, "new_friends", day(0), day(0), outlet_id=tree.outlets["O112"].id)
    with pytest.raises(PermissionDenied):
        board(
            session,
            users[Role.CITY_PLANNER],
            "new_friends",
            day(0),
            day(0),
            city_id=tree.cities["C2"].id,
        )
    with pytest.raises(PermissionDenied):
        board(session, users[Role.DESIGNER], "new_friends", day(0), day(0))


def test_targets_completion_and_behind_flag(session: Session, world) -> None:
    tree, users, _ = world
    admin = users[Role.ADMIN]
    load(
        session,
        admin,
        H,
        [(day(0), code("O111", "a"), "O111", 10, 1), (day(0), code("O111", "b"), "O111", 1, 1)],
    )
    targets = staff_csv(
        "员工编码,指标,开始日期,结束日期,目标值",
        [
            (code("O111", "a"), "新增好友", day(0), day(9), 20),
            (code("O111", "b"), "new_friends", day(0), day(9), 20),
        ],
    )
    report = import_staff_targets(session, actor=admin, data=targets, filename="t.csv")
    assert report.ok, report.problems
    b = board(session, admin, "new_friends", day(0), day(9), outlet_id=tree.outlets["O111"].id)
    rows = {r.name: r for r in b.rows}
    # data until day 0: 1 of 10 days elapsed = 10%; a is at 50%, b at 5%
    assert rows["a"].completion == 0.5 and not rows["a"].behind
    assert rows["b"].behind and [r.name for r in b.behind] == ["b"]


def test_cli_import_and_staff_board_agree_with_the_engine(
    session: Session, world, tmp_path
) -> None:
    from decimal import Decimal

    from core.platform.permissions import Actor
    from tests.core.test_cli import run_cli

    tree, _, _ = world
    save_metric(
        session,
        actor=world[1][Role.ADMIN],
        form=MetricForm("value_deposits", "价值存款", "元", MetricKind.FLOW, True, True, True),
    )
    bad = tmp_path / "bad.csv"
    bad.write_bytes(staff_csv("日期,员工编码,价值存款", [(day(0), "nobody", "1")]))
    refused = run_cli("import-staff-metrics", str(bad))
    assert refused.returncode == 1 and "第 2 行" in refused.stderr
    good = tmp_path / "good.csv"
    rows = [
        (day(0), code("O111", "a"), "12.50"),
        (day(0), code("O111", "b"), "12.50"),
        (day(1), code("O111", "c"), "-3"),
        (day(1), code("O211", "e"), "99.99"),
    ]
    good.write_bytes(staff_csv("日期,员工编码,价值存款", rows))
    assert run_cli("import-staff-metrics", str(good), "--dry-run").returncode == 0
    assert run_cli("import-staff-metrics", str(good)).returncode == 0, "import"
    args = ["leaderboard", "--level", "staff", "--metric", "value_deposits"]
    args += ["--start", str(day(0)), "--end", str(day(1)), "--city", "C1", "--format", "csv"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "rank,staff_code,staff_name,outlet_code,value"
    session.rollback()
    engine = board(
        session, Actor.system(), "value_deposits", day(0), day(1), city_id=tree.cities["C1"].id
    )
    assert [line.split(",") for line in lines[1:]] == [
        [str(r.rank), r.code, r.name, r.outlet_code, f"{Decimal(r.value) / 100:.2f}"]
        for r in engine.rows
    ]
    assert lines[1:3] == ["1,wx_O111_a,a,O111,12.50", "1,wx_O111_b,b,O111,12.50"]
    assert lines[3:] == ["3,wx_O112_d,d,O112,0.00", "4,wx_O111_c,c,O111,-3.00"]
    mine = run_cli(*args[:-2], "--outlet", "O111", "--top", "1", "--format", "csv")
    assert mine.stdout.strip().splitlines()[1:] == ["1,wx_O111_a,a,O111,12.50"]
    unknown = run_cli(
        "leaderboard",
        "--level",
        "staff",
        "--metric",
        "nope",
        "--start",
        str(day(0)),
        "--end",
        str(day(1)),
    )
    assert unknown.returncode == 1 and "未知或已停用的指标" in unknown.stderr


def test_reminder_names_the_staff_furthest_behind(session: Session, world) -> None:
    from core.jobs.tasks import _behind_text
    from core.metrics.staff_targets import furthest_behind

    tree, users, _ = world
    admin = users[Role.ADMIN]
    load(
        session,
        admin,
        H,
        [
            (day(0), code("O111", "a"), "O111", 1, 1),
            (day(1), code("O111", "a"), "O111", 1, 1),
            (day(0), code("O111", "b"), "O111", 4, 1),
            (day(0), code("O111", "c"), "O111", 9, 1),
        ],
    )
    targets = staff_csv(
        "员工编码,指标,开始日期,结束日期,目标值",
        [(code("O111", n), "new_friends", day(0), day(9), 20) for n in "abc"],
    )
    assert import_staff_targets(session, actor=admin, data=targets, filename="t.csv").ok
    # two of ten days elapsed (20%): a has 10%, b 20% (on pace), c 45%
    behind = furthest_behind(session, tree.outlets["O111"].id, day(1))
    assert [(b.staff_name, float(b.completion)) for b in behind] == [("a", 0.1)]
    text = _behind_text(session, tree.outlets["O111"].id, day(1))
    assert "a（新增好友完成 10%，时间进度 20%）" in text
    assert _behind_text(session, tree.outlets["O112"].id, day(1)) == ""


def test_registry_metric_on_the_outlet_detail_and_cities(session: Session, world) -> None:
    from core.metrics.cities import city_ranking
    from core.metrics.outlet_detail import outlet_detail

    tree, users, _ = world
    admin = users[Role.ADMIN]
    save_metric(
        session,
        actor=admin,
        form=MetricForm("mobile_banking", "手机银行开户", "户", MetricKind.FLOW, False, True, True),
    )
    header = "date,outlet_code,new_friends,total_friends,groups,group_members,conversions,deposits,手机银行开户\n"
    rows = [
        (day(0), "O111", 1, 1, 1, 1, 1, "0", 3),
        (day(1), "O111", 1, 1, 1, 1, 1, "0", 4),
        (day(1), "O211", 1, 1, 1, 1, 1, "0", 10),
    ]
    assert import_metrics(session, actor=admin, data=metrics_csv(rows, header), filename="o.csv").ok
    query = BoardQuery("mobile_banking", Period(day(0), day(1)))
    detail = outlet_detail(session, actor=admin, outlet_id=tree.outlets["O111"].id, query=query)
    assert detail.daily == [(day(0), 3), (day(1), 4)] and detail.row.value == 7
    assert detail.province_rank == 2
    cities = city_ranking(session, actor=admin, metric="mobile_banking", period=query.period)
    assert [(c.name, c.total) for c in cities] == [("C2市", 10), ("C1市", 7)]
    with pytest.raises(ValidationFailed):  # two metrics may not share a header
        save_metric(session, actor=admin, form=MetricForm("mb2", "手机银行开户"))


def test_out_of_order_and_repeated_imports_stay_exact(session: Session, world) -> None:
    _, users, _ = world
    admin = users[Role.ADMIN]
    load(session, admin, H, [(day(0), code("O111", "a"), "O111", 1, 10)])
    load(session, admin, H, [(day(2), code("O111", "a"), "O111", 4, 30)])
    load(session, admin, H, [(day(1), code("O111", "a"), "O111", 2, 20)])  # an older day later
    load(session, admin, H, [(day(0), code("O111", "a"), "O111", 5, 15)])  # a correction
    load(session, admin, H, [(day(0), code("O111", "a"), "O111", 5, 15)])  # the same file twice

    def value(metric: str, start: date, end: date) -> int:
        rows = board(session, admin, metric, start, end).rows
        return next(r.value for r in rows if r.name == "a")

    assert value("new_friends", day(0), day(2)) == 11
    assert value("new_friends", day(1), day(2)) == 6
    assert value("new_friends", day(0), day(0)) == 5
    assert value("total_friends", day(0), day(1)) == 20
    assert value("total_friends", day(0), day(0)) == 15
    assert value("total_friends", day(0), day(5)) == 30  # carried past the last report
