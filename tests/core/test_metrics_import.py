"""Importing daily metrics: the rules of DESIGN.md to the letter."""

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from openpyxl import Workbook
from sqlmodel import Session

from core.metrics.importing import import_metrics
from core.platform.clock import shanghai_today
from core.platform.errors import PermissionDenied
from core.platform.permissions import Role
from core.platform.settings import get_settings
from db.models import AuditLog, DailyMetric, MetricSnapshot
from tests.factories import all_totals, make_tree, make_users, metrics_csv

D1, D2 = date(2026, 11, 7), date(2026, 11, 8)
GOOD = [
    (D1, "O111", 5, 100, 2, 60, 1, "1,234.50"),
    (D1, "O112", 3, 80, 1, 40, 0, "-200"),
    (D2, "O111", 7, 107, 2, 66, 2, "3000"),
]


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    return tree, make_users(session)


def _count(session: Session, model) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def _imp(session: Session, actor, data: bytes, **kw):
    return import_metrics(session, actor=actor, data=data, filename="m.csv", **kw)


def test_good_file_is_imported_exactly(session: Session, world) -> None:
    _, users = world
    report = _imp(session, users[Role.ADMIN], metrics_csv(GOOD))
    assert report.ok, report.problems
    assert (report.rows, report.created, report.replaced, report.outlets) == (3, 3, 0, 2)
    row = session.get(DailyMetric, (D1, world[0].outlets["O111"].id))
    assert (row.new_friends, row.total_friends, row.deposits_fen) == (5, 100, 123450)
    assert session.get(DailyMetric, (D1, world[0].outlets["O112"].id)).deposits_fen == -20000


def test_gbk_file_with_one_bad_row_changes_nothing_and_names_the_line(
    session: Session, world
) -> None:
    _, users = world
    header = "日期,网点编码,新增好友,好友总数,客户群数,群成员数,转化客户,新增存款(元)\n"
    bad = [*GOOD, (D2, "O112", "-4", 80, 1, 40, 0, "10")]  # line 5: negative count
    report = _imp(session, users[Role.ADMIN], metrics_csv(bad, header=header, encoding="gbk"))
    assert not report.ok
    assert [(p.line, p.column) for p in report.problems] == [(5, "新增好友")]
    assert "负数" in report.problems[0].reason
    assert _count(session, DailyMetric) == 0 and _count(session, MetricSnapshot) == 0
    assert _count(session, AuditLog) == 0


def test_every_bad_row_is_reported_with_its_reason(session: Session, world) -> None:
    _, users = world
    rows = [
        (D1, "O111", 1, 1, 1, 1, 1, 1),
        (D1, "NOPE", 1, 1, 1, 1, 1, 1),  # line 3: unknown outlet
        (D1, "K11", 1, 1, 1, 1, 1, 1),  # line 4: a county, not an outlet
        (D1, "O111", 1, 1, 1, 1, 1, 1),  # line 5: duplicate of line 2
        ("2026-02-30", "O112", 1, 1, 1, 1, 1, 1),  # line 6: impossible date
        (D1, "O112", 1.5, 1, 1, 1, 1, "1.234"),  # line 7: two problems
        ("2099-01-01", "O113", 1, 1, 1, 1, 1, 1),  # line 8: future
    ]
    report = _imp(session, users[Role.ADMIN], metrics_csv(rows))
    by_line = {}
    for p in report.problems:
        by_line.setdefault(p.line, []).append(p.reason)
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8]
    assert "不存在" in by_line[3][0]
    assert "不是网点" in by_line[4][0]
    assert "第 2 行重复" in by_line[5][0]
    assert len(by_line[7]) == 2
    assert "晚于今天" in by_line[8][0]
    assert _count(session, DailyMetric) == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "文件为空"),
        (b"date,outlet_code\n2026-11-08,O111\n", "缺少必需的列"),
        (metrics_csv([]), "没有数据行"),
        ("日期,网点编码\n".encode("utf-16"), "UTF-16"),
        (b"\x81\x30" * 50, "编码"),
    ],
)
def test_hostile_files_are_refused(session: Session, world, data: bytes, reason: str) -> None:
    report = _imp(session, world[1][Role.ADMIN], data)
    assert not report.ok and reason in report.problems[0].reason
    assert _count(session, DailyMetric) == 0


def test_huge_cell_is_refused(session: Session, world) -> None:
    report = _imp(
        session, world[1][Role.ADMIN], metrics_csv([(D1, "O111" + "1" * 500, 1, 1, 1, 1, 1, 1)])
    )
    assert not report.ok and "过长" in report.problems[0].reason


def test_reimport_replaces_and_twice_gives_same_totals(session: Session, world) -> None:
    _, users = world
    admin = users[Role.ADMIN]
    data = metrics_csv(GOOD)
    assert _imp(session, admin, data).ok
    first = all_totals(session, D1, D2)
    again = _imp(session, admin, data)
    assert (again.created, again.replaced) == (0, 3)
    assert all_totals(session, D1, D2) == first
    assert first["new_friends"] == 15 and first["deposits"] == 123450 - 20000 + 300000
    changed = _imp(session, admin, metrics_csv([(D1, "O111", 50, 100, 2, 60, 1, "0")]))
    assert (changed.created, changed.replaced) == (0, 1)
    assert all_totals(session, D1, D2)["new_friends"] == 60


def test_dry_run_validates_and_writes_nothing(session: Session, world) -> None:
    report = _imp(session, world[1][Role.ADMIN], metrics_csv(GOOD), dry_run=True)
    assert report.ok and report.rows == 3 and report.created == 0
    assert _count(session, DailyMetric) == 0


def test_xlsx_import(session: Session, world, tmp_path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(
        [
            "日期",
            "网点编码",
            "新增好友",
            "好友总数",
            "客户群数",
            "群成员数",
            "转化客户",
            "新增存款(元)",
        ]
    )
    sheet.append([D1, "O111", 4, 10, 1, 5, 1, 1234.56])
    path = tmp_path / "m.xlsx"
    book.save(path)
    report = import_metrics(
        session, actor=world[1][Role.ADMIN], data=path.read_bytes(), filename="m.xlsx"
    )
    assert report.ok, report.problems
    assert session.get(DailyMetric, (D1, world[0].outlets["O111"].id)).deposits_fen == 123456


def test_city_planner_imports_only_their_city(session: Session, world) -> None:
    _, users = world
    planner = users[Role.CITY_PLANNER]  # city C1
    report = _imp(
        session,
        planner,
        metrics_csv([(D1, "O111", 1, 1, 1, 1, 1, 1), (D1, "O211", 1, 1, 1, 1, 1, 1)]),
    )
    assert [(p.line, p.reason) for p in report.problems] == [(3, "该网点不在您的管辖范围内")]
    assert _imp(session, planner, metrics_csv([(D1, "O111", 1, 1, 1, 1, 1, 1)])).ok


@pytest.mark.parametrize("role", [Role.OUTLET_MANAGER, Role.DESIGNER, Role.PROVINCE_REVIEWER])
def test_other_roles_may_not_import(session: Session, world, role: Role) -> None:
    with pytest.raises(PermissionDenied):
        _imp(session, world[1][role], metrics_csv(GOOD))


def test_import_is_audited(session: Session, world) -> None:
    _imp(session, world[1][Role.ADMIN], metrics_csv(GOOD))
    entry = session.exec(sa.select(AuditLog)).scalars().one()
    assert entry.action == "metrics.import" and entry.actor_name == "admin"
    assert entry.after["rows"] == 3 and entry.after["created"] == 3


def _tomorrow() -> str:
    return (shanghai_today() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("1900-01-01", "日期早于允许的最早日期 2015-01-01"),
        ("0001-01-01", "日期早于允许的最早日期 2015-01-01"),
        ("10000", "10000 按 Excel 日期序号读作 1927-05-18，日期早于允许的最早日期 2015-01-01"),
        ("2014-12-31", "日期早于允许的最早日期 2015-01-01"),
        (_tomorrow, "日期不能晚于今天（上海时间"),
    ],
)
def test_a_date_outside_the_window_is_refused_and_nothing_is_written(
    session: Session, world, cell, reason: str
) -> None:
    cell = cell() if callable(cell) else cell
    rows = [(D1, "O111", 1, 1, 1, 1, 1, 1), (cell, "O112", 1, 1, 1, 1, 1, 1)]
    report = _imp(session, world[1][Role.ADMIN], metrics_csv(rows))
    assert [(p.line, p.column, p.value) for p in report.problems] == [(3, "日期", cell)]
    assert report.problems[0].reason.startswith(reason)
    assert _count(session, DailyMetric) == 0 and _count(session, MetricSnapshot) == 0


def test_excel_serials_and_date_cells_obey_the_window(session: Session, world, tmp_path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(
        ["日期", "网点编码", "新增好友", "好友总数", "客户群数", "群成员数", "转化客户", "新增存款"]
    )
    sheet.append([10000, "O111", 1, 1, 1, 1, 1, 1])  # a number: read as 1927-05-18
    sheet.append([datetime(1900, 1, 1), "O112", 1, 1, 1, 1, 1, 1])  # a date cell
    sheet.append([46000, "O113", 1, 1, 1, 1, 1, 1])  # 2025-12-9: inside the window
    path = tmp_path / "m.xlsx"
    book.save(path)
    report = import_metrics(
        session, actor=world[1][Role.ADMIN], data=path.read_bytes(), filename="m.xlsx"
    )
    assert [(p.line, p.reason) for p in report.problems] == [
        (2, "10000 按 Excel 日期序号读作 1927-05-18，日期早于允许的最早日期 2015-01-01"),
        (3, "日期早于允许的最早日期 2015-01-01"),
    ]
    assert _count(session, DailyMetric) == 0 and _count(session, MetricSnapshot) == 0


def test_the_earliest_date_comes_from_the_settings(
    session: Session, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_EARLIEST", "2026-11-08")
    get_settings.cache_clear()
    report = _imp(session, world[1][Role.ADMIN], metrics_csv(GOOD))
    assert [(p.line, p.reason) for p in report.problems] == [
        (2, "日期早于允许的最早日期 2026-11-08"),
        (3, "日期早于允许的最早日期 2026-11-08"),
    ]
    assert _imp(session, world[1][Role.ADMIN], metrics_csv(GOOD[2:])).ok  # the day itself
