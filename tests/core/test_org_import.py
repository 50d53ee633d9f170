"""Importing the org tree: create, update by code, refuse broken trees, all or nothing."""

import pytest
from sqlmodel import Session, select

from core.errors import PermissionDenied
from core.org_import import import_org
from db.models import AuditLog, OrgLevel, OrgUnit, Role
from tests.factories import make_tree, make_user

TREE = """机构编码,机构名称,层级,上级编码
X,新省,省,
X1,新一市,市,X
X11,新一区,区县,X1
X111,新一支局,网点,X11
X112,新二支局,outlet,X11
"""


def _import(session: Session, actor, text: str, **kw):
    return import_org(session, actor=actor, data=text.encode("gbk"), filename="org.csv", **kw)


@pytest.fixture
def admin(session: Session):
    return make_user(session, "admin", Role.ADMIN)


def test_a_whole_tree_in_any_order(session: Session, admin) -> None:
    lines = TREE.strip().splitlines()
    shuffled = "\n".join([lines[0], *reversed(lines[1:])])  # children before parents
    report = _import(session, admin, shuffled)
    assert report.ok, report.problems
    assert report.created == 5
    outlet = session.exec(select(OrgUnit).where(OrgUnit.code == "X111")).one()
    city = session.exec(select(OrgUnit).where(OrgUnit.code == "X1")).one()
    assert outlet.level is OrgLevel.OUTLET and outlet.city_id == city.id


def test_reimport_updates_names_and_parents_by_code(session: Session, admin) -> None:
    assert _import(session, admin, TREE).ok
    moved = TREE + "X12,新二区,区县,X1\n"
    moved = moved.replace("X112,新二支局,outlet,X11", "X112,新二支局（迁址）,outlet,X12")
    report = _import(session, admin, moved)
    assert (report.created, report.updated, report.unchanged) == (1, 1, 4)
    outlet = session.exec(select(OrgUnit).where(OrgUnit.code == "X112")).one()
    county = session.exec(select(OrgUnit).where(OrgUnit.code == "X12")).one()
    assert (
        outlet.name == "新二支局（迁址）"
        and outlet.parent_id == county.id
        and outlet.county_id == county.id
    )
    entry = session.exec(
        select(AuditLog).where(AuditLog.action == "org.import").order_by(AuditLog.id.desc())
    ).first()
    assert entry.before["updated"][0]["name"] == "新二支局"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("Y1,孤儿市,市,NOPE\n", "上级编码不存在"),
        ("Y11,错层区,区县,X\n", "上级须为市"),
        ("Y,另一省,省,X\n", "不应有上级"),
        ("Y111,缺上级网点,网点,\n", "必须填写上级"),
        ("Y2,坏层级,乡镇,X\n", "层级须为"),
        ("X1,重复市,市,X\n", "重复"),
        ("Z111,网点挂市,网点,X1\n", "上级须为区县"),
    ],
)
def test_broken_trees_are_refused_and_nothing_changes(
    session: Session, admin, extra: str, reason: str
) -> None:
    report = _import(session, admin, TREE + extra)
    assert not report.ok
    assert any(reason in p.reason for p in report.problems), report.problems
    assert session.exec(select(OrgUnit)).first() is None


def test_level_of_an_existing_code_cannot_change(session: Session, admin) -> None:
    make_tree(session)
    report = _import(session, admin, "code,name,level,parent_code\nO111,改成区县,county,C1\n")
    assert any("层级不能修改" in p.reason for p in report.problems)


def test_dry_run_counts_without_writing(session: Session, admin) -> None:
    report = _import(session, admin, TREE, dry_run=True)
    assert report.ok and report.created == 5
    assert session.exec(select(OrgUnit)).first() is None


def test_only_admins_import_the_tree(session: Session) -> None:
    make_tree(session)
    planner = make_user(session, "planner", Role.CITY_PLANNER, "C1")
    with pytest.raises(PermissionDenied):
        _import(session, planner, TREE)
