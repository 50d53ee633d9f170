"""Per-outlet targets: imported for a campaign or a period, all or nothing; the boards'
completion then uses them instead of the KPI spread evenly."""

from datetime import date

import pytest
from sqlmodel import Session, select

from core.campaigns.targets import outlet_targets
from core.cli import main
from core.metrics.rankings import BoardQuery, _targets
from core.metrics.targets import import_targets, period_targets
from core.platform.periods import Period
from core.platform.permissions import Role
from db.models import OutletTarget
from tests.factories import make_tree, make_users
from tests.results_world import ended_campaign

HEADER = "网点编码,指标,目标值,活动编号,开始日期,结束日期\n"


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    users = make_users(session)
    cid, _ = ended_campaign(session)
    return tree, users, cid


def _file(lines: list[str]) -> bytes:
    return (HEADER + "\n".join(lines) + "\n").encode()


def test_campaign_targets_replace_the_even_spread(session: Session, world) -> None:
    tree, users, cid = world
    even = outlet_targets(session, campaign_id=cid, metric="deposits")
    assert set(even.values()) == {250_000_000}  # 1000 万元 over 4 outlets, in fen
    data = _file([f'O111,新增存款,"1,000,000.50",{cid},,', f"O112,deposits,20000,{cid},,"])
    report = import_targets(session, actor=users[Role.CITY_PLANNER], data=data, filename="t")
    assert report.ok, list(report.problems)
    assert outlet_targets(session, campaign_id=cid, metric="deposits") == {
        tree.outlets["O111"].id: 100_000_050,
        tree.outlets["O112"].id: 2_000_000,
    }
    again = import_targets(session, actor=users[Role.ADMIN], data=data, filename="t")
    assert (again.created, again.replaced) == (0, 2)


def test_period_targets_reach_the_board_and_bad_lines_are_named(session: Session, world) -> None:
    tree, users, _ = world
    data = _file(
        ["O111,新增好友,30,,2026-11-01,2026-11-30", "O211,新增好友,40,,2026-11-01,2026-11-30"]
    )
    report = import_targets(session, actor=users[Role.CITY_PLANNER], data=data, filename="t")
    assert [(p.line, p.reason) for p in report.problems] == [(3, "该网点不在您的管辖范围内")]
    assert session.exec(select(OutletTarget)).all() == []
    bad = _file(
        [
            "O111,新增好友,30,,2026-11-01,2026-11-30",
            "O111,新增好友,31,,2026-11-01,2026-11-30",  # duplicate
            "O112,好友,3,,2026-11-01,2026-11-30",  # metric
            "O113,新增好友,-3,,2026-11-01,2026-11-30",  # negative
            "O121,新增好友,3,,2026-11-30,2026-11-01",  # end before start
            "O121,新增好友,3,,2029-11-01,2029-11-30",  # beyond the planning horizon
        ]
    )
    report = import_targets(session, actor=users[Role.ADMIN], data=bad, filename="t")
    assert sorted({p.line for p in report.problems}) == [3, 4, 5, 6, 7]
    ok = _file(["O111,新增好友,30,,2026-11-01,2026-11-30"])
    assert import_targets(session, actor=users[Role.ADMIN], data=ok, filename="t").ok
    period = Period(date(2026, 11, 1), date(2026, 11, 30))
    expected = {tree.outlets["O111"].id: 30}
    assert (
        period_targets(session, start=period.start, end=period.end, metric="new_friends")
        == expected
    )
    assert _targets(session, users[Role.ADMIN], BoardQuery("new_friends", period)) == expected


def test_cli_import_targets(session: Session, world, tmp_path) -> None:
    _, _, cid = world
    path = tmp_path / "t.csv"
    path.write_bytes(_file([f"O111,conversions,5,{cid},,"]))
    assert main(["import-targets", str(path), "--dry-run"]) == 0
    assert main(["import-targets", str(path)]) == 0
    path.write_bytes(_file(["O111,conversions,5,99999,,"]))
    assert main(["import-targets", str(path)]) == 1
