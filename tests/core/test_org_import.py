"""Importing the org tree: create, update by code, refuse broken trees, all or nothing."""

import pytest
from sqlmodel import Session, select

from core.platform.errors import PermissionDenied
from core.platform.org_import import import_org
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


def test_the_tree_has_exactly_one_province(session: Session, admin) -> None:
    report = _import(session, admin, TREE + "Y,另一省,省,\n")
    assert [(p.line, p.reason) for p in report.problems] == [
        (7, "机构树只能有一个省级机构（已有 X），不能再导入省级机构 Y")
    ]
    assert _import(session, admin, TREE).ok
    report = _import(
        session, admin, "code,name,level,parent_code\nY1,另一市,city,Y\nY,另一省,province,\n"
    )
    assert any(p.line == 3 and "只能有一个省级机构（已有 X）" in p.reason for p in report.problems)
    assert session.exec(select(OrgUnit).where(OrgUnit.code.in_(["Y", "Y1"]))).first() is None


def test_an_outlet_that_moves_city_takes_its_codes_and_leaves_its_merchants(
    session: Session,
) -> None:
    from core.campaigns.design import TargetMode
    from core.campaigns.plans import copy_campaign, save_draft
    from core.campaigns.targets import target_outlets
    from core.channels.codes import batch_codes, list_codes
    from core.platform.errors import ValidationFailed
    from core.platform.permissions import Actor
    from db.models import Campaign, ChannelCode, MerchantOutlet
    from tests.factories import complete_design, make_merchant, make_staff, make_users

    tree = make_tree(session)
    users = make_users(session)
    other_planner = make_user(session, "planner2", Role.CITY_PLANNER, "C2")
    make_staff(session, "O111", "张三")
    code = batch_codes(session, actor=Actor.system(), city_id=tree.cities["C1"].id).codes[0]
    merchant = make_merchant(session, "C1", "星沙超市", ("O111", "O112"))
    o111, o112 = tree.outlets["O111"].id, tree.outlets["O112"].id
    design = complete_design(
        session, "C1", target_mode=TargetMode.OUTLETS, target_outlet_ids=[o111, o112]
    )
    planner = users[Role.CITY_PLANNER]
    campaign_id = save_draft(session, actor=planner, design=design).id

    report = _import(
        session, users[Role.ADMIN], "code,name,level,parent_code\nO111,O111支局,outlet,K21\n"
    )
    assert report.ok and report.moved == 1, report.problems
    assert "1 个网点改属其他市" in report.summary()

    session.expire_all()
    assert session.get(ChannelCode, code.id).city_id == tree.cities["C2"].id
    assert list_codes(session, actor=planner) == []
    assert [c.id for c in list_codes(session, actor=other_planner)] == [code.id]
    links = session.exec(
        select(MerchantOutlet.outlet_id).where(MerchantOutlet.merchant_id == merchant)
    )
    assert list(links) == [o112]
    entry = session.exec(select(AuditLog).where(AuditLog.action == "org.import")).one()
    assert entry.after["moved"] == [
        {
            "outlet": "O111",
            "from_city": "C1",
            "to_city": "C2",
            "codes_moved": 1,
            "merchants_unbound": ["星沙超市"],
        }
    ]
    # The plan keeps its history; what it reaches, and any new reference, stays in C1.
    stored = session.get(Campaign, campaign_id)
    assert stored.design["target_outlet_ids"] == [o111, o112]
    assert target_outlets(session, design) == [o112]
    with pytest.raises(ValidationFailed, match="所选网点「O111支局」不属于本市（C1市）"):
        save_draft(session, actor=planner, design=design, campaign_id=campaign_id)
    copied = copy_campaign(session, actor=planner, source_id=campaign_id)
    assert session.get(Campaign, copied.id).design["target_outlet_ids"] == [o112]
    note = session.exec(select(AuditLog).where(AuditLog.action == "campaign.copy")).one()
    assert "已去掉不再属于本市的网点「O111支局」" in note.summary


def test_a_county_that_moves_city_takes_its_outlets_codes_along(session: Session) -> None:
    from core.channels.codes import batch_codes
    from core.platform.permissions import Actor
    from db.models import ChannelCode
    from tests.factories import make_staff

    tree = make_tree(session)
    admin = make_user(session, "admin", Role.ADMIN)
    make_staff(session, "O121", "钱七")
    batch_codes(session, actor=Actor.system(), city_id=tree.cities["C1"].id)
    report = _import(session, admin, "code,name,level,parent_code\nK12,K12区,county,C2\n")
    assert report.ok and report.moved == 1
    session.expire_all()
    assert [c.city_id for c in session.exec(select(ChannelCode))] == [tree.cities["C2"].id]
