"""The 复盘 of a campaign: the CLI's JSON against an independent recomputation from the raw
daily rows and coupon events (SQLite and PostgreSQL), spend alerts once each, the freeze."""

import json
import random
from datetime import date, timedelta
from fractions import Fraction

import numpy as np
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns.design import TargetMode
from core.cli import main
from core.jobs.tasks import results_freeze, spend_alerts
from core.metrics.importing import import_metrics
from core.platform.errors import PermissionDenied
from core.platform.permissions import Actor, Role
from core.results.coupons import import_coupons
from core.results.retrospective import JSON_KEYS, retrospective
from db.models import (
    Campaign,
    CouponEvent,
    DailyMetric,
    Notification,
    OrgLevel,
    OrgUnit,
    PlanState,
    Retrospective,
    SpendAlert,
)
from tests.factories import make_stages, make_tree, make_users
from tests.results_world import add_outlets, coupon_csv, ended_campaign, metrics_file

START, END, LAST_DATA = date(2026, 11, 1), date(2026, 11, 20), date(2026, 11, 15)
PRE_START = START - timedelta(days=15)


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    users = make_users(session)
    make_stages(session)
    add_outlets(session, "K11", "T", 12)  # C1: 16 outlets, all in the campaign
    add_outlets(session, "K21", "U", 12)  # C2: 14 outlets
    cid, design = ended_campaign(session)
    # Another city's campaign on two C2 outlets overlaps: they are not controls.
    busy = [session.exec(select(OrgUnit).where(OrgUnit.code == c)).one().id for c in ("U00", "U01")]
    ended_campaign(
        session,
        "C2",
        name="C2活动",
        start=date(2026, 10, 20),
        end=date(2026, 10, 25),
        target_mode=TargetMode.OUTLETS,
        target_outlet_ids=busy,
    )
    c1 = tree.cities["C1"].id
    outlets = session.exec(
        select(OrgUnit.code, OrgUnit.city_id).where(OrgUnit.level == OrgLevel.OUTLET)
    ).all()
    rng = random.Random(7)
    rows = []
    day = PRE_START
    while day <= LAST_DATA:
        for code, city in outlets:
            boost = 3 if city == c1 and day >= START else 0
            rows.append(
                (
                    day,
                    code,
                    rng.randint(0, 6) + boost,
                    rng.randint(0, 2) + boost // 3,
                    rng.randint(-50_000, 200_000) + boost * 30_000,
                )
            )
        day += timedelta(days=1)
    report = import_metrics(
        session, actor=users[Role.ADMIN], data=metrics_file(rows), filename="m.csv"
    )
    assert report.ok, list(report.problems)[:3]
    merchant = design.merchant_ids[0]
    coupons = []
    for i in range(300):
        code = rng.choice([c for c, city in outlets if city == c1])
        line = 1 + i % 2
        face = 2000 if line == 1 else 500
        at = f"2026-11-{1 + i % 25:02d} 10:{i % 60:02d}:00"
        kind = ["领取", "核销", "过期"][i % 3]
        discount = face - (i % 7) if kind == "核销" else 0
        m = merchant if line == 1 else ""
        coupons.append(
            (f"E{i}", cid, line, code, m, f"cust{i % 90}", kind, face / 100, discount / 100, at)
        )
    report = import_coupons(
        session, actor=users[Role.ADMIN], data=coupon_csv(coupons), filename="c.csv"
    )
    assert report.ok, list(report.problems)[:3]
    return tree, users, cid, design


def _recompute(session: Session, cid: int, design) -> dict:
    """The JSON, from the raw rows, without the code under test."""
    session.rollback()
    c1 = session.get(Campaign, cid).city_id
    outlets = session.exec(
        select(OrgUnit.id, OrgUnit.code, OrgUnit.city_id).where(OrgUnit.level == OrgLevel.OUTLET)
    ).all()
    treated = sorted(code for _, code, city in outlets if city == c1)
    control = sorted(code for _, code, city in outlets if city != c1 and code not in ("U00", "U01"))
    last = min(END, session.execute(sa.select(sa.func.max(DailyMetric.date))).scalar_one())
    days = (last - START).days + 1
    pre = (START - timedelta(days=days), START - timedelta(days=1))
    ids = {code: oid for oid, code, _ in outlets}
    columns = {
        "new_friends": "new_friends",
        "conversions": "conversions",
        "deposits": "deposits_fen",
    }

    def sums(column: str, first: date, end: date) -> dict[int, int]:
        col = getattr(DailyMetric, column)
        query = (
            sa.select(DailyMetric.outlet_id, sa.func.sum(col))
            .where(DailyMetric.date >= first, DailyMetric.date <= end)
            .group_by(DailyMetric.outlet_id)
        )
        return {oid: int(v) for oid, v in session.execute(query)}

    kpi, uplift = {}, {}
    for metric, column in columns.items():
        during, before = sums(column, START, last), sums(column, *pre)
        delta = {c: during.get(ids[c], 0) - before.get(ids[c], 0) for c in treated + control}
        t = np.array([delta[c] for c in treated], dtype=float)
        c = np.array([delta[c] for c in control], dtype=float)
        rng = np.random.default_rng(20_261_201)
        ti = rng.integers(0, len(t), size=(1000, len(t)))
        ci = rng.integers(0, len(c), size=(1000, len(c)))
        low, high = np.percentile(t[ti].mean(1) - c[ci].mean(1), [2.5, 97.5])
        per = t.mean() - c.mean()
        r = (lambda v: float(round(v))) if metric == "deposits" else (lambda v: round(float(v), 2))
        uplift[metric] = {
            "per_outlet": r(per),
            "total": r(per * len(t)),
            "ci_low": r(low),
            "ci_high": r(high),
            "treated": treated,
            "control": control,
        }
        kpi[metric] = {
            "target": getattr(
                design, {"deposits": "kpi_deposits_fen"}.get(metric, f"kpi_{metric}")
            ),
            "actual": sum(during.get(ids[code], 0) for code in treated),
        }
    events = session.exec(select(CouponEvent).where(CouponEvent.campaign_id == cid)).all()
    post = merchant = 0
    for line, coupon in enumerate(design.coupons, start=1):
        total = sum(
            e.discount_fen for e in events if e.coupon_line == line and e.kind == "redeemed"
        )
        share = Fraction(total * coupon.post_share_pct, 100)
        p = int(share + Fraction(1, 2))
        post, merchant = post + p, merchant + total - p
    return {
        "spend_post_fen": post,
        "spend_merchant_fen": merchant,
        "claimed": sum(e.kind == "claimed" for e in events),
        "redeemed": sum(e.kind == "redeemed" for e in events),
        "kpi": kpi,
        "uplift": uplift,
    }


def test_cli_json_matches_an_independent_recomputation(session: Session, world, capsys) -> None:
    _, _, cid, design = world
    capsys.readouterr()
    assert main(["retrospective", "--campaign", str(cid), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert tuple(data) == JSON_KEYS
    expected = _recompute(session, cid, design)
    assert data == expected
    assert len(data["uplift"]["new_friends"]["treated"]) == 16
    assert len(data["uplift"]["new_friends"]["control"]) == 12
    # the effect put in the data is found, inside its interval
    u = data["uplift"]["new_friends"]
    assert u["ci_low"] <= u["per_outlet"] <= u["ci_high"] and u["ci_low"] > 0
    assert main(["retrospective", "--campaign", str(cid), "--format", "table"]) == 0
    assert "邮政出资" in capsys.readouterr().out


def test_too_few_controls_give_no_estimate_with_the_reason(session: Session, world) -> None:
    _, users, cid, _ = world
    # A running campaign on ten C2 outlets overlapping the windows leaves 2 controls.
    busy = session.exec(
        select(OrgUnit.id).where(OrgUnit.code.like("U%"), OrgUnit.code.not_in(["U00", "U01"]))
    ).all()[:10]
    ended_campaign(
        session,
        "C2",
        name="C2同期",
        state=PlanState.RUNNING,
        target_mode=TargetMode.OUTLETS,
        target_outlet_ids=list(busy),
    )
    report = retrospective(session, actor=users[Role.ADMIN], campaign_id=cid)
    assert report["uplift"]["deposits"]["per_outlet"] is None
    assert "对照网点只有 2 个" in report["uplift_reason"]["deposits"]
    assert "样本太少" in report["uplift_sentence"]["deposits"]


def test_scope_planner_of_another_city_and_managers_are_refused(session: Session, world) -> None:
    _tree, users, cid, _ = world
    with pytest.raises(PermissionDenied):
        retrospective(session, actor=users[Role.OUTLET_MANAGER], campaign_id=cid)
    from tests.factories import make_user

    other = make_user(session, "planner2", Role.CITY_PLANNER, "C2")
    with pytest.raises(PermissionDenied):
        retrospective(session, actor=other, campaign_id=cid)
    mine = retrospective(session, actor=users[Role.CITY_PLANNER], campaign_id=cid)
    assert mine["campaign"]["id"] == cid and mine["chain"][0]["step"] == "scans"


def test_spend_alerts_fire_once_each_at_90_and_100_percent(session: Session, world) -> None:
    _, users, cid, _design = world
    system = Actor.system("scheduler")
    now = __import__("datetime").datetime(2026, 11, 30, 9, 0)
    spend_alerts(session, system, now)
    session.rollback()
    assert session.exec(select(SpendAlert)).all() == []  # far below the budget
    campaign = session.get(Campaign, cid)
    # Shrink the approved budget so the spend is between 90 % and 100 % of it, then above.
    report = retrospective(session, actor=users[Role.ADMIN], campaign_id=cid)
    post = report["spend_post_fen"]

    def set_budget(post_budget: int) -> None:
        # one coupon of line 1 (60 % post), the rest of the post budget in line 2 (100 %)
        d = dict(campaign.design)
        coupons = [dict(c) for c in d["coupons"]]
        coupons[0]["quantity"] = 1
        line1 = coupons[0]["face_value_fen"] * 60 // 100
        coupons[1]["quantity"] = (post_budget - line1) // coupons[1]["face_value_fen"]
        d["coupons"] = coupons
        campaign.design = d
        session.add(campaign)
        session.commit()

    set_budget(int(post / 0.95))
    spend_alerts(session, system, now)
    spend_alerts(session, system, now)
    session.rollback()
    assert [a.threshold_pct for a in session.exec(select(SpendAlert))] == [90]
    set_budget(post - 1000)
    spend_alerts(session, system, now)
    spend_alerts(session, system, now)
    session.rollback()
    assert sorted(a.threshold_pct for a in session.exec(select(SpendAlert))) == [90, 100]
    notes = list(session.exec(select(Notification)))
    wanted = {users[Role.CITY_PLANNER].user_id, users[Role.PROVINCE_REVIEWER].user_id}
    for pct in (90, 100):
        got = [n.user_id for n in notes if n.title == f"活动支出已达预算的 {pct}%：{campaign.name}"]
        assert sorted(got) == sorted(wanted)


def test_the_freeze_job_stores_the_retrospective_once_and_notifies(session: Session, world) -> None:
    _, users, cid, _ = world
    system = Actor.system("scheduler")
    now = __import__("datetime").datetime(2026, 11, 30, 9, 0)
    results_freeze(session, system, now)
    results_freeze(session, system, now)
    session.rollback()
    frozen = session.exec(select(Retrospective)).all()
    assert sorted(r.campaign_id for r in frozen) == sorted(
        c.id for c in session.exec(select(Campaign).where(Campaign.state == PlanState.ENDED))
    )
    notes = [n for n in session.exec(select(Notification)) if "复盘" in n.title]
    planner = users[Role.CITY_PLANNER].user_id
    assert sum(n.user_id == planner for n in notes) == 1
    report = retrospective(session, actor=users[Role.ADMIN], campaign_id=cid)
    assert report["frozen_at"] is not None


def test_the_pdf_and_the_workbook_open_and_hold_the_figures(session: Session, world) -> None:
    from openpyxl import load_workbook

    from core.results.report import pdf, xlsx

    _, users, cid, _ = world
    report = retrospective(session, actor=users[Role.ADMIN], campaign_id=cid)
    book = load_workbook(__import__("io").BytesIO(xlsx(report)), read_only=True)
    assert book.sheetnames[:4] == ["概况", "权益券", "目标完成", "提升效果"]
    lines = list(book["权益券"].iter_rows(values_only=True))
    assert sum(row[8] for row in lines[1:]) == report["spend_post_fen"] / 100
    codes = [row[2] for row in book["参与与对照网点"].iter_rows(values_only=True)][1:]
    assert set(codes) >= set(report["uplift"]["deposits"]["control"])
    document = pdf(report)
    if dump := __import__("os").environ.get("RESULTS_PDF_DUMP"):
        __import__("pathlib").Path(dump).write_bytes(document)
    assert document.startswith(b"%PDF") and b"/FontFile" in document
    assert document.count(b"/Type /Page\n") + document.count(b"/Type /Page ") <= 2


def test_the_chain_joins_friends_coupons_and_conversions_on_the_hashed_customer(
    session: Session, world
) -> None:
    from datetime import datetime as dt

    from core.channels.events import NewEvent, add_events, hash_customer
    from core.platform.clock import SHANGHAI
    from db.models import AssignmentRule, ChannelCode, ChannelType, EventType

    tree, users, cid, _ = world
    code = ChannelCode(
        slug="res1",
        name="活动码",
        channel_type=ChannelType.COUNTER,
        outlet_id=tree.outlets["O111"].id,
        city_id=tree.cities["C1"].id,
        campaign_id=cid,
        rule=AssignmentRule.ROUND_ROBIN,
    )
    session.add(code)
    session.commit()
    at = dt(2026, 11, 3, 10, tzinfo=SHANGHAI)
    events = [NewEvent(code, at.replace(minute=m), EventType.SCAN, "", None) for m in range(5)]
    # cust0..cust3 added as friends; the fixture's coupons: cust{i % 90} claim when i % 3 == 0,
    # redeem when i % 3 == 1, so cust1 and cust2 (i = 1, 91 / 2, 182...) redeem, cust0, cust3 claim
    events += [
        NewEvent(code, at, EventType.ADD_FRIEND, hash_customer(f"cust{i}"), None) for i in range(4)
    ]
    events += [
        NewEvent(code, at, EventType.CONVERT, hash_customer(f"cust{i}"), None) for i in range(4)
    ]
    add_events(session, events, "import")
    session.commit()
    report = retrospective(session, actor=users[Role.ADMIN], campaign_id=cid)
    chain = {s["step"]: s["count"] for s in report["chain"]}
    events_by = session.exec(select(CouponEvent)).all()
    hashed = {hash_customer(f"cust{i}"): i for i in range(4)}
    claimed = {e.customer for e in events_by if e.kind == "claimed" and e.customer in hashed}
    redeemed = {e.customer for e in events_by if e.kind == "redeemed" and e.customer in claimed}
    assert chain["scans"] == 5 and chain["friends"] == 4
    assert chain["claimed"] == len(claimed) and chain["redeemed"] == len(redeemed)
    assert chain["conversions"] == len(redeemed)
