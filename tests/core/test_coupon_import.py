"""Importing coupon events: all or nothing, every bad line named, idempotent by event id,
customer ids hashed like channel events, times inside the campaign window plus grace."""

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.channels.events import hash_customer
from core.cli import main
from core.platform.errors import PermissionDenied
from core.platform.permissions import Role
from core.results.coupons import import_coupons
from db.models import AuditLog, CouponEvent, CouponEventKind, PlanState
from tests.factories import make_tree, make_users
from tests.results_world import coupon_csv, ended_campaign


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    users = make_users(session)
    cid, design = ended_campaign(session)
    return tree, users, cid, design


def _rows(cid: int, merchant: int) -> list[tuple]:
    return [
        ("E1", cid, 1, "O111", merchant, "cust-a", "领取", "20", "0", "2026-11-08 10:00:00"),
        ("E2", cid, 1, "O111", merchant, "cust-a", "核销", "20", "20", "2026-11-08 11:00:00"),
        ("E3", cid, 2, "O112", "", "cust-b", "redeemed", "5", "5.00", "2026/11/25 09:30"),
    ]


def _count(session: Session) -> int:
    session.rollback()  # a fresh snapshot: the CLI wrote through its own connection
    return session.execute(sa.select(sa.func.count()).select_from(CouponEvent)).scalar_one()


def test_good_file_is_stored_with_hashed_customers_and_reimport_changes_nothing(
    session: Session, world
) -> None:
    _, users, cid, design = world
    data = coupon_csv(_rows(cid, design.merchant_ids[0]))
    report = import_coupons(session, actor=users[Role.ADMIN], data=data, filename="c.csv")
    assert report.ok, list(report.problems)
    assert (report.rows, report.created, report.replaced, report.campaigns) == (3, 3, 0, [cid])
    e2 = session.get(CouponEvent, "E2")
    assert (e2.kind, e2.face_value_fen, e2.discount_fen, e2.coupon_line) == (
        CouponEventKind.REDEEMED,
        2000,
        2000,
        1,
    )
    assert e2.customer == hash_customer("cust-a") and "cust-a" not in e2.customer
    again = import_coupons(session, actor=users[Role.ADMIN], data=data, filename="c.csv")
    assert (again.created, again.replaced) == (0, 3) and _count(session) == 3
    assert session.exec(select(AuditLog).where(AuditLog.action == "coupons.import")).all()


def test_every_bad_line_is_named_and_nothing_is_written(session: Session, world) -> None:
    _, users, cid, design = world
    m = design.merchant_ids[0]
    rows = [
        *_rows(cid, m),
        ("E1", cid, 1, "O111", m, "c", "领取", "20", "0", "2026-11-09 10:00"),  # line 5 dup id
        ("E5", cid, 3, "O111", "", "c", "领取", "20", "0", "2026-11-09 10:00"),  # 6 no line 3
        ("E6", cid, 1, "O211", "", "c", "领取", "20", "0", "2026-11-09 10:00"),  # 7 other city
        ("E7", cid, 1, "O111", "", "c", "领取", "20", "0", "2026-11-28 10:00"),  # 8 after grace
        ("E8", cid, 1, "O111", "", "c", "作废", "20", "0", "2026-11-09 10:00"),  # 9 kind
        ("E9", cid, 1, "O111", "", "c", "核销", "20", "25", "2026-11-09 10:00"),  # 10 > face
        ("E10", 999, 1, "O111", "", "c", "核销", "20", "5", "2026-11-09 10:00"),  # 11 campaign
        ("E11", cid, 1, "O111", "", "", "核销", "20", "5", "2099-11-09 10:00"),  # 12 two
    ]
    report = import_coupons(session, actor=users[Role.ADMIN], data=coupon_csv(rows), filename="c")
    assert not report.ok
    lines = sorted({p.line for p in report.problems})
    assert lines == [5, 6, 7, 8, 9, 10, 11, 12]
    assert {p.column for p in report.problems if p.line == 12} == {"客户ID", "时间"}
    assert _count(session) == 0


def test_a_planner_imports_only_their_city_and_a_manager_not_at_all(
    session: Session, world
) -> None:
    _tree, users, _cid, _design = world
    other, _ = ended_campaign(session, "C2", name="C2活动")
    rows = [("X1", other, 2, "O211", "", "c", "领取", "5", "0", "2026-11-09 10:00")]
    report = import_coupons(
        session, actor=users[Role.CITY_PLANNER], data=coupon_csv(rows), filename="c"
    )
    assert [p.reason for p in report.problems] == [
        "该活动不在您的管辖范围内",
        "该网点不在您的管辖范围内",
    ]
    with pytest.raises(PermissionDenied):
        import_coupons(
            session, actor=users[Role.OUTLET_MANAGER], data=coupon_csv(rows), filename="c"
        )


def test_a_draft_campaign_takes_no_coupons(session: Session, world) -> None:
    _, users, _, _ = world
    draft, _ = ended_campaign(session, state=PlanState.DRAFT, name="草稿")
    rows = [("D1", draft, 2, "O111", "", "c", "领取", "5", "0", "2026-11-09 10:00")]
    report = import_coupons(session, actor=users[Role.ADMIN], data=coupon_csv(rows), filename="c")
    assert "草稿" in report.problems[0].reason


def test_cli_dry_run_writes_nothing_and_refusal_exits_1(
    session: Session, world, tmp_path, capsys
) -> None:
    _, _, cid, design = world
    good = tmp_path / "good.csv"
    good.write_bytes(coupon_csv(_rows(cid, design.merchant_ids[0])))
    assert main(["import-coupons", str(good), "--dry-run"]) == 0
    assert _count(session) == 0
    assert main(["import-coupons", str(good)]) == 0
    assert _count(session) == 3
    bad = tmp_path / "bad.csv"
    bad.write_bytes(coupon_csv([("B1", cid, 1, "O111", "", "c", "领取", "x", "0", "2026-11-09")]))
    assert main(["import-coupons", str(bad)]) == 1
    assert "第 2 行" in capsys.readouterr().err
