"""The partner-merchant directory: scope, validation, masking, import."""

import pytest
from sqlmodel import Session, select

from core.campaigns.merchants import MerchantInput, import_merchants, list_merchants, save_merchant
from core.platform.errors import PermissionDenied, ValidationFailed
from db.models import Merchant, MerchantOutlet, Role
from tests.factories import make_tree, make_users


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    return tree, make_users(session)


def test_planner_adds_and_edits_a_merchant_of_their_city(session: Session, world) -> None:
    tree, users = world
    planner = users[Role.CITY_PLANNER]
    c1 = tree.cities["C1"].id
    created = save_merchant(
        session,
        actor=planner,
        data=MerchantInput(
            c1,
            "星沙好又多超市",
            "超市",
            contact_phone="13812345678",
            outlet_ids=(tree.outlets["O111"].id,),
        ),
    )
    assert created.contact_phone == "138****5678" and created.outlet_names == ("O111支局",)
    edited = save_merchant(
        session,
        actor=planner,
        data=MerchantInput(c1, "星沙好又多超市（旗舰店）", "超市", outlet_ids=()),
        merchant_id=created.id,
    )
    assert edited.outlet_ids == () and session.exec(select(MerchantOutlet)).first() is None
    assert list_merchants(session, actor=users[Role.ADMIN])[0].contact_phone == ""
    with pytest.raises(PermissionDenied):
        save_merchant(
            session, actor=planner, data=MerchantInput(tree.cities["C2"].id, "外市商户", "超市")
        )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (MerchantInput(0, "", "超市"), "name"),
        (MerchantInput(0, "某店", "赌场"), "category"),
        (MerchantInput(0, "某店", "超市", contact_phone="call me"), "contact_phone"),
    ],
)
def test_bad_merchants_are_refused(
    session: Session, world, data: MerchantInput, field: str
) -> None:
    tree, users = world
    data = MerchantInput(
        tree.cities["C1"].id, data.name, data.category, contact_phone=data.contact_phone
    )
    with pytest.raises(ValidationFailed) as info:
        save_merchant(session, actor=users[Role.ADMIN], data=data)
    assert info.value.problems[0].field == field


def test_outlets_must_belong_to_the_city(session: Session, world) -> None:
    tree, users = world
    with pytest.raises(ValidationFailed, match="本市"):
        save_merchant(
            session,
            actor=users[Role.ADMIN],
            data=MerchantInput(
                tree.cities["C1"].id, "某店", "超市", outlet_ids=(tree.outlets["O211"].id,)
            ),
        )


def test_search_and_scope(session: Session, world) -> None:
    tree, users = world
    for city, name in (("C1", "星沙药房"), ("C1", "河西超市"), ("C2", "株洲药房")):
        save_merchant(
            session, actor=users[Role.ADMIN], data=MerchantInput(tree.cities[city].id, name, "药店")
        )
    assert [
        m.name for m in list_merchants(session, actor=users[Role.CITY_PLANNER], text="药房")
    ] == ["星沙药房"]
    assert len(list_merchants(session, actor=users[Role.DESIGNER])) == 3
    with pytest.raises(PermissionDenied):
        list_merchants(session, actor=users[Role.OUTLET_MANAGER])


def test_import_is_all_or_nothing(session: Session, world) -> None:
    _, users = world
    good = (
        "商户名称,所属市编码,类别,绑定网点编码\n甲超市,C1,超市,O111;O112\n乙药房,C1,药店,\n".encode(
            "gbk"
        )
    )
    bad = good + "丙店,C2,超市,\n丁店,C1,超市,O211\n".encode("gbk")
    report = import_merchants(session, actor=users[Role.CITY_PLANNER], data=bad, filename="m.csv")
    assert [p.line for p in report.problems] == [4, 5]
    assert session.exec(select(Merchant)).first() is None
    report = import_merchants(session, actor=users[Role.CITY_PLANNER], data=good, filename="m.csv")
    assert report.ok and report.created == 2
    assert len(session.exec(select(MerchantOutlet)).all()) == 2
