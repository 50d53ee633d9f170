"""The demo province: 14 cities, 122 counties, ~2,000 outlets, staff, merchants, a year
of daily metrics and an account for every role. Deterministic for a given seed and end date.

The seed only creates what is missing, so running it again is harmless.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlmodel import Session, select

from core.demo.campaigns import seed_campaigns
from core.demo.channels import seed_channels
from core.demo.data import (
    BRAND_WORDS,
    CITIES,
    CITY_WEIGHT,
    GIVEN,
    MERCHANT_KINDS,
    OUTLET_SUFFIX,
    PLACE_FIRST,
    PLACE_SECOND,
    PROVINCE,
    ROAD_SUFFIX,
    SURNAMES,
)
from core.demo.results import seed_results
from core.demo.staff_metrics import seed_registry_metrics
from core.metrics import snapshots
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.auth import hash_password
from core.platform.clock import shanghai_today, utcnow
from core.platform.org import recompute_ancestors
from core.platform.permissions import Actor
from db.bulk import bulk_insert, indexes_dropped
from db.engine import write_transaction
from db.models import (
    CityBudget,
    Merchant,
    MerchantOutlet,
    OrgLevel,
    OrgUnit,
    ReviewStage,
    ReviewStageMember,
    Role,
    Staff,
    StaffRole,
    User,
)

DEMO_PASSWORD = "Demo2026"
DAYS = 365
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: Role
    note: str
    org_code: str = ""


@dataclass
class SeedSummary:
    cities: int = 0
    counties: int = 0
    outlets: int = 0
    staff: int = 0
    merchants: int = 0
    metric_rows: int = 0
    accounts: int = 0
    campaigns: int = 0
    coupon_events: int = 0
    codes: int = 0
    skipped: bool = False


def seed_demo(
    session: Session,
    *,
    seed: int = 2026,
    end_date: date | None = None,
    days: int = DAYS,
    city_limit: int | None = None,
    progress: Progress | None = None,
) -> SeedSummary:
    """Create the demo province unless an org tree exists; always add missing demo accounts.

    `days` and `city_limit` shrink the province for tests; the defaults are the real demo.
    """
    say = progress or (lambda _msg: None)
    end_date = end_date or shanghai_today() - timedelta(days=1)
    summary = SeedSummary()
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    with write_transaction(session):
        if session.exec(select(OrgUnit).where(OrgUnit.level == OrgLevel.PROVINCE)).first() is None:
            say("生成机构树…")
            outlets = _create_tree(session, rng, summary, CITIES[:city_limit])
            say(f"生成员工与商户（{summary.outlets} 个网点）…")
            _create_staff(session, rng, outlets, summary)
            _create_merchants(session, rng, outlets, summary)
            say(f"生成 {days} 天网点日报…")
            summary.metric_rows = _create_metrics(session, np_rng, outlets, end_date, days)
            say("生成转化明细与员工日报…")
            seed_registry_metrics(session, np_rng, [o.id for o in outlets], end_date)
        else:
            summary.skipped = True
        summary.accounts = _create_accounts(session)
        _create_review_setup(session, end_date.year)
        if not summary.skipped or summary.accounts:
            audit.record(
                session,
                actor=Actor.system("seed-demo"),
                action=AuditAction.DEMO_SEED,
                summary=(
                    f"补充演示账户 {summary.accounts} 个"
                    if summary.skipped
                    else f"生成演示省份：{summary.cities} 个市州、{summary.counties} 个区县、{summary.outlets} 个网点、"
                    f"{summary.metric_rows} 行日报（截至 {end_date}）"
                ),
                after={"seed": seed, "end_date": str(end_date)},
            )
    say("生成各状态的活动方案…")
    summary.campaigns = seed_campaigns(session, end_date + timedelta(days=1))
    say("生成渠道活码与转化数据…")
    summary.codes = seed_channels(session, end_date)
    say("生成活动权益券数据与复盘…")
    summary.coupon_events = seed_results(session, end_date, seed)
    if not summary.skipped:
        say("生成排名走势与数据质量检查…")
        _history(session, end_date, min(days, 60))
    say("完成")
    return summary


@dataclass(frozen=True)
class _Outlet:
    id: int
    code: str
    name: str
    city_code: str
    county_name: str


def _create_tree(
    session: Session, rng: random.Random, summary: SeedSummary, cities: list
) -> list[_Outlet]:
    province = OrgUnit(code=PROVINCE[0], name=PROVINCE[1], level=OrgLevel.PROVINCE)
    session.add(province)
    session.flush()
    outlets: list[_Outlet] = []
    for city_code, city_name, counties in cities:
        city = OrgUnit(code=city_code, name=city_name, level=OrgLevel.CITY, parent_id=province.id)
        session.add(city)
        session.flush()
        summary.cities += 1
        for county_no, county_name in enumerate(counties, start=1):
            county = OrgUnit(
                code=f"{city_code}{county_no:02d}",
                name=county_name,
                level=OrgLevel.COUNTY,
                parent_id=city.id,
            )
            session.add(county)
            session.flush()
            summary.counties += 1
            urban = county_name.endswith("区")
            count = (
                rng.randint(13, 19)
                + (3 if urban else 0)
                + round(2 * (CITY_WEIGHT[city_code] - 1) * 4)
            )
            short = county_name if len(county_name) <= 3 else county_name[:2]
            units = []
            for name in _outlet_names(rng, short, urban, count):
                units.append(
                    OrgUnit(code="", name=name, level=OrgLevel.OUTLET, parent_id=county.id)
                )
            for seq, unit in enumerate(units, start=1):
                unit.code = f"{county.code}{seq:03d}"
            session.add_all(units)
            session.flush()
            outlets += [_Outlet(u.id, u.code, u.name, city_code, county_name) for u in units]
    session.flush()
    recompute_ancestors(session)
    summary.outlets = len(outlets)
    return outlets


def _outlet_names(rng: random.Random, county: str, urban: bool, count: int) -> list[str]:
    names: set[str] = set()
    ordered: list[str] = []
    suffixes = [s for s, _ in OUTLET_SUFFIX]
    weights = [w for _, w in OUTLET_SUFFIX]
    while len(ordered) < count:
        place = rng.choice(PLACE_FIRST) + rng.choice(PLACE_SECOND)
        if urban and rng.random() < 0.4:
            place += rng.choice(ROAD_SUFFIX)
        elif not urban and rng.random() < 0.3:
            place += "镇"
        name = f"{county}{place}{rng.choices(suffixes, weights)[0]}"
        if name not in names:
            names.add(name)
            ordered.append(name)
    return ordered


def _person(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def _create_staff(
    session: Session, rng: random.Random, outlets: list[_Outlet], summary: SeedSummary
) -> None:
    rows = []
    now = utcnow()
    for outlet in outlets:
        roles = [StaffRole.BRANCH_HEAD, StaffRole.TELLER, StaffRole.MARKETER]
        roles += rng.sample(
            [StaffRole.TELLER, StaffRole.MARKETER, StaffRole.COURIER, StaffRole.COURIER],
            rng.randint(1, 3),
        )
        for n, role in enumerate(roles, start=1):
            userid = f"YZ{outlet.code}{n:02d}"
            token = hashlib.sha256(userid.encode()).hexdigest()[:16]
            left = rng.random() < 0.02 and role is not StaffRole.BRANCH_HEAD
            rows.append(
                (
                    outlet.id,
                    _person(rng),
                    role.value,
                    userid,
                    f"1{rng.choice('35789')}{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
                    f"https://work.weixin.qq.com/ca/cawcde{token}",
                    not left,
                    date(2026, rng.randint(1, 10), rng.randint(1, 28)) if left else None,
                    now,
                )
            )
    columns = (
        "outlet_id",
        "name",
        "role",
        "wecom_userid",
        "mobile",
        "contact_url",
        "active",
        "left_on",
        "created_at",
    )
    summary.staff = bulk_insert(session, Staff.__tablename__, columns, rows)


def _create_merchants(
    session: Session, rng: random.Random, outlets: list[_Outlet], summary: SeedSummary
) -> None:
    by_county: dict[tuple[str, str], list[_Outlet]] = {}
    for outlet in outlets:
        by_county.setdefault((outlet.city_code, outlet.county_name), []).append(outlet)
    city_ids = {
        u.code: u.id for u in session.exec(select(OrgUnit).where(OrgUnit.level == OrgLevel.CITY))
    }
    for (city_code, county_name), county_outlets in by_county.items():
        for _ in range(rng.randint(3, 7)):
            category, kinds = rng.choice(MERCHANT_KINDS)
            place = (
                county_outlets[0].name[len(county_name[:3]) :][:2]
                if rng.random() < 0.3
                else rng.choice(PLACE_FIRST) + rng.choice(PLACE_SECOND)
            )
            name = f"{place}{rng.choice(BRAND_WORDS)}{rng.choice(BRAND_WORDS)}{rng.choice(kinds)}"
            merchant = Merchant(
                city_id=city_ids[city_code],
                name=name,
                category=category,
                address=f"{county_name}{rng.choice(PLACE_FIRST)}{rng.choice(PLACE_SECOND)}{rng.choice(ROAD_SUFFIX)}{rng.randint(1, 399)}号",
                contact_name=_person(rng),
                contact_phone=f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}",
            )
            session.add(merchant)
            session.flush()
            for outlet in rng.sample(county_outlets, min(len(county_outlets), rng.randint(1, 3))):
                session.add(MerchantOutlet(merchant_id=merchant.id, outlet_id=outlet.id))
            summary.merchants += 1


def _create_metrics(
    session: Session, rng: np.random.Generator, outlets: list[_Outlet], end_date: date, days: int
) -> int:
    """A year of believable daily numbers, plus the running totals derived from them."""
    n = len(outlets)
    dates = [end_date - timedelta(days=days - 1 - i) for i in range(days)]
    arrays = demo_metric_arrays(rng, n, dates, [CITY_WEIGHT[o.city_code] for o in outlets])
    ids = [o.id for o in outlets]
    now = utcnow()
    reported = arrays["reported"]
    # Date-major order matches the primary key (date, outlet_id): much faster inserts.
    rows_j, rows_i = np.nonzero(reported.T)
    columns = (
        "new_friends",
        "total_friends",
        "groups",
        "group_members",
        "conversions",
        "deposits_fen",
    )
    values = [arrays[k][rows_i, rows_j].tolist() for k in columns]
    id_list = np.asarray(ids)[rows_i].tolist()
    raw = (
        (dates[j], outlet_id, *vals, now)
        for j, outlet_id, *vals in zip(rows_j.tolist(), id_list, *values, strict=True)
    )
    with indexes_dropped(session, "daily_metric"):
        count = bulk_insert(
            session, "daily_metric", ("date", "outlet_id", *columns, "imported_at"), raw
        )
    size = max(ids) + 1
    snapshots.write_arrays(session, dates, running_totals(arrays), size, np.asarray(ids))
    return count


def demo_metric_arrays(
    rng: np.random.Generator, n: int, dates: list[date], weights: list[float]
) -> dict[str, np.ndarray]:
    """(outlets × days) arrays: weekly rhythm, growth, 逢8 spikes, outliers and gaps.

    Shared with bench/ so the benchmark's national data set looks like the demo's.
    """
    days = len(dates)
    size = rng.lognormal(0.0, 0.55, n) * np.asarray(weights)
    growth = 1 + (0.2 + rng.normal(0, 0.15, n))[:, None] * (np.arange(days) / days)[None, :]
    weekday = np.array([d.weekday() for d in dates])
    weekly = np.array([1.1, 1.05, 1.0, 1.0, 1.1, 0.8, 0.65])[weekday]
    rights_day = np.array([d.day in (8, 18, 28) for d in dates])
    spike = np.where(rights_day, 2.6, 1.0)
    lam = 3.5 * size[:, None] * growth * weekly[None, :] * spike[None, :]
    new_friends = rng.poisson(lam)
    churn = rng.poisson(lam * 0.06)
    start_friends = (size * rng.uniform(500, 1100, n)).astype(np.int64)
    total_friends = np.maximum(start_friends[:, None] + np.cumsum(new_friends - churn, axis=1), 0)
    groups = (1 + (size * 2.5).astype(np.int64))[:, None] + np.cumsum(
        rng.random((n, days)) < 0.012, axis=1
    )
    members = (total_friends * np.clip(rng.normal(0.55, 0.08, n), 0.3, 0.8)[:, None]).astype(
        np.int64
    )
    conversions = rng.poisson(lam * 0.07 * np.where(rights_day, 1.4, 1.0)[None, :])
    deposits_yuan = (
        conversions * rng.normal(18_000, 6_000, (n, days))
        + rng.normal(0, 9_000, (n, days)) * size[:, None]
    )
    deposits_fen = (np.round(deposits_yuan, 2) * 100).round().astype(np.int64)
    # A few outliers (a bulk sign-up at a company, a data-entry slip) ...
    for _ in range(max(3, n // 100)):
        i, j = rng.integers(n), rng.integers(days)
        new_friends[i, j] *= 15
        conversions[i, j] *= 12
    # ... a few outlets that stop reporting, a few new ones, and scattered missing days.
    reported = rng.random((n, days)) > 0.004
    if days >= 14:  # tiny test provinces skip the long gaps
        for i in rng.choice(n, size=max(1, n // 100), replace=False):
            reported[i, rng.integers(days * 2 // 3, days - 4) :] = False
        for i in rng.choice(n, size=max(1, n // 150), replace=False):
            reported[i, : rng.integers(days // 6, days * 2 // 3)] = False
    reported[:, -1] &= rng.random(n) > 0.005  # yesterday: a handful are late
    return {
        "reported": reported,
        "new_friends": new_friends,
        "total_friends": total_friends,
        "groups": groups,
        "group_members": members,
        "conversions": conversions,
        "deposits_fen": deposits_fen,
    }


def running_totals(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(outlets × days) running totals, as metric snapshots hold them: flows summed from the
    first day, stocks carried from the last day with data, `reported` once ever reported."""
    reported = arrays["reported"]
    days = reported.shape[1]
    totals = {
        f"cum_{k}": np.cumsum(np.where(reported, arrays[k], 0), axis=1)
        for k in ("new_friends", "conversions", "deposits_fen")
    }
    last = np.maximum.accumulate(np.where(reported, np.arange(days)[None, :], -1), axis=1)
    rows = np.arange(reported.shape[0])[:, None]
    for k in ("total_friends", "groups", "group_members"):
        totals[k] = np.where(last >= 0, arrays[k][rows, np.maximum(last, 0)], 0)
    totals["reported"] = last >= 0
    return totals


def demo_accounts(session: Session) -> list[DemoAccount]:
    """The demo logins, one or two per role, attached to real units of the demo tree."""

    def outlet_of(city_code: str, index: int) -> str:
        units = session.exec(
            select(OrgUnit.code)
            .where(OrgUnit.level == OrgLevel.OUTLET, OrgUnit.code.startswith(city_code))
            .order_by(OrgUnit.code)
        ).all()
        return units[index % len(units)] if units else ""

    return [
        DemoAccount("admin", "张敏", Role.ADMIN, "用户、机构、审核环节、模板、任务、审计"),
        DemoAccount("reviewer1", "李娜", Role.PROVINCE_REVIEWER, "第一环节：专业部门审核"),
        DemoAccount("reviewer2", "王磊", Role.PROVINCE_REVIEWER, "第二环节：项目组审核"),
        DemoAccount("planner", "刘洋", Role.CITY_PLANNER, "长沙市分公司活动策划", "4301"),
        DemoAccount("planner2", "陈静", Role.CITY_PLANNER, "株洲市分公司活动策划", "4302"),
        DemoAccount("designer", "赵婷", Role.DESIGNER, "海报模板、批量海报、渠道活码"),
        DemoAccount(
            "manager", "周杰", Role.OUTLET_MANAGER, "长沙市某支局负责人", outlet_of("4301", 37)
        ),
        DemoAccount(
            "manager2", "吴芳", Role.OUTLET_MANAGER, "株洲市某支局负责人", outlet_of("4302", 11)
        ),
    ]


def _create_accounts(session: Session) -> int:
    existing = set(session.exec(select(User.username)).all())
    password_hash = None
    created = 0
    for account in demo_accounts(session):
        if account.username in existing:
            continue
        org = (
            session.exec(select(OrgUnit).where(OrgUnit.code == account.org_code)).first()
            if account.org_code
            else None
        )
        if account.org_code and org is None:
            continue
        password_hash = password_hash or hash_password(DEMO_PASSWORD)
        session.add(
            User(
                username=account.username,
                display_name=account.display_name,
                role=account.role,
                org_id=org.id if org else None,
                password_hash=password_hash,
            )
        )
        created += 1
    return created


def _create_review_setup(session: Session, year: int) -> None:
    """Review stages (专业部门 → 项目组), the compliance list and city budgets, where missing."""
    from core.campaigns.compliance import seed_default_terms

    seed_default_terms(session)
    if session.exec(select(ReviewStage.id)).first() is None:
        users = {u.username: u.id for u in session.exec(select(User))}
        session.flush()
        for position, (name, username) in enumerate(
            (("专业部门审核", "reviewer1"), ("项目组审核", "reviewer2")), start=1
        ):
            stage = ReviewStage(position=position, name=name)
            session.add(stage)
            session.flush()
            if username in users:
                session.add(ReviewStageMember(stage_id=stage.id, user_id=users[username]))
    cities = session.exec(select(OrgUnit).where(OrgUnit.level == OrgLevel.CITY)).all()
    for city in cities:
        for y in (year, year + 1):
            if session.get(CityBudget, (city.id, y)) is None:
                # 长沙 gets a generous cap; the others scale with their weight (fen).
                cap = int(CITY_WEIGHT.get(city.code, 1.0) * 1_200_000) * 100
                session.add(CityBudget(city_id=city.id, year=y, cap_fen=cap))


def _history(session: Session, end_date: date, days: int) -> None:
    """What the nightly jobs would have written over the last weeks: daily rank snapshots
    (for the rank trend) and the data-quality check of the newest day."""
    from datetime import datetime, time

    from core.jobs import tasks as jobs
    from core.platform.clock import SHANGHAI

    system = Actor.system("seed-demo")
    for offset in range(days - 1, -1, -1):
        night = datetime.combine(end_date - timedelta(days=offset - 1), time(3), tzinfo=SHANGHAI)
        jobs.rank_snapshot(session, system, night)
    jobs.data_quality(
        session, system, datetime.combine(end_date + timedelta(days=1), time(7), tzinfo=SHANGHAI)
    )
