"""Small, explicit test data: a two-city province and users of every role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, select

from core.platform.auth import actor_for_user, hash_password
from core.platform.org import recompute_ancestors
from core.platform.permissions import Actor
from db.models import OrgLevel, OrgUnit, Role, User

PASSWORD = "Passw0rd!"
_HASH: str | None = None


@dataclass
class Tree:
    province: OrgUnit
    cities: dict[str, OrgUnit]
    counties: dict[str, OrgUnit]
    outlets: dict[str, OrgUnit]


def make_tree(session: Session) -> Tree:
    """省 P → 市 C1 (县 K11: outlets O111, O112, O113; 县 K12: O121) and 市 C2 (县 K21: O211, O212)."""
    province = OrgUnit(code="P", name="测试省", level=OrgLevel.PROVINCE)
    session.add(province)
    session.flush()
    cities, counties, outlets = {}, {}, {}
    layout = {
        "C1": {"K11": ["O111", "O112", "O113"], "K12": ["O121"]},
        "C2": {"K21": ["O211", "O212"]},
    }
    for city_code, county_map in layout.items():
        city = OrgUnit(
            code=city_code, name=f"{city_code}市", level=OrgLevel.CITY, parent_id=province.id
        )
        session.add(city)
        session.flush()
        cities[city_code] = city
        for county_code, outlet_codes in county_map.items():
            county = OrgUnit(
                code=county_code, name=f"{county_code}区", level=OrgLevel.COUNTY, parent_id=city.id
            )
            session.add(county)
            session.flush()
            counties[county_code] = county
            for code in outlet_codes:
                outlet = OrgUnit(
                    code=code, name=f"{code}支局", level=OrgLevel.OUTLET, parent_id=county.id
                )
                session.add(outlet)
                outlets[code] = outlet
    session.flush()
    recompute_ancestors(session)
    session.commit()
    return Tree(province, cities, counties, outlets)


def make_user(session: Session, username: str, role: Role, org_code: str | None = None) -> Actor:
    global _HASH
    _HASH = _HASH or hash_password(PASSWORD)
    org = session.exec(select(OrgUnit).where(OrgUnit.code == org_code)).one() if org_code else None
    session.add(
        User(
            username=username,
            display_name=username,
            role=role,
            org_id=org.id if org else None,
            password_hash=_HASH,
        )
    )
    session.commit()
    return actor_for_user(session, username)


def make_users(session: Session) -> dict[Role, Actor]:
    """One user per role: planner of C1, manager of O111."""
    return {
        Role.ADMIN: make_user(session, "admin", Role.ADMIN),
        Role.PROVINCE_REVIEWER: make_user(session, "reviewer", Role.PROVINCE_REVIEWER),
        Role.CITY_PLANNER: make_user(session, "planner", Role.CITY_PLANNER, "C1"),
        Role.OUTLET_MANAGER: make_user(session, "manager", Role.OUTLET_MANAGER, "O111"),
        Role.DESIGNER: make_user(session, "designer", Role.DESIGNER),
    }


HEADER = "date,outlet_code,new_friends,total_friends,groups,group_members,conversions,deposits\n"


def metrics_csv(rows: list[tuple], header: str = HEADER, encoding: str = "utf-8") -> bytes:
    """rows: (date, outlet_code, new_friends, total_friends, groups, group_members, conversions, deposits)."""
    lines = [header.rstrip("\n")]
    for row in rows:
        lines.append(",".join(_cell(v) for v in row))
    return ("\n".join(lines) + "\n").encode(encoding)


def _cell(value: object) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value)
    return f'"{text}"' if "," in text else text


def period_by_code(session: Session, start: date, end: date) -> dict[str, dict[str, int]]:
    """Every outlet's six metric values over [start, end], keyed by outlet code."""
    from core.metrics.values import METRICS, period_values
    from core.platform.directory import outlet_directory

    directory = outlet_directory(session)
    values = period_values(session, directory, start, end)
    return {
        code: {key: int(values[key][outlet_id]) for key in METRICS}
        for code, outlet_id in zip(directory.codes, directory.ids.tolist(), strict=True)
    }


def all_totals(session: Session, start: date, end: date):
    from core.metrics.values import totals
    from core.platform.directory import outlet_directory

    directory = outlet_directory(session)
    return totals(session, directory, directory.scope_mask(), start, end)


def make_merchant(
    session: Session, city_code: str, name: str, outlet_codes: tuple[str, ...] = ()
) -> int:
    from db.models import Merchant, MerchantOutlet

    city = session.exec(select(OrgUnit).where(OrgUnit.code == city_code)).one()
    merchant = Merchant(city_id=city.id, name=name, category="超市", contact_phone="13812345678")
    session.add(merchant)
    session.flush()
    for code in outlet_codes:
        outlet = session.exec(select(OrgUnit).where(OrgUnit.code == code)).one()
        session.add(MerchantOutlet(merchant_id=merchant.id, outlet_id=outlet.id))
    session.commit()
    return merchant.id


def make_stages(session: Session, *stage_members: list[str]) -> None:
    """Review stages with the given reviewer usernames (default: one stage, 'reviewer')."""
    from db.models import ReviewStage, ReviewStageMember

    members = stage_members or (["reviewer"],)
    users = {u.username: u.id for u in session.exec(select(User))}
    for position, names in enumerate(members, start=1):
        stage = ReviewStage(position=position, name=f"第{position}环节")
        session.add(stage)
        session.flush()
        for name in names:
            session.add(ReviewStageMember(stage_id=stage.id, user_id=users[name]))
    session.commit()


def complete_design(
    session: Session, city_code: str = "C1", name: str = "12月逢8会员权益日", **changes: object
):
    """A design that passes every submission check."""
    from core.campaigns.design import CampaignDesign, Coupon, CouponKind

    city = session.exec(select(OrgUnit).where(OrgUnit.code == city_code)).one()
    merchant = make_merchant(session, city_code, f"{name}合作超市")
    design = CampaignDesign(
        name=name,
        city_id=city.id,
        start_date=date(2026, 12, 1),
        end_date=date(2026, 12, 31),
        coupons=[
            Coupon(
                name="满100减20",
                kind=CouponKind.FULL_REDUCTION,
                face_value_fen=2000,
                threshold_fen=10000,
                quantity=1000,
                post_share_pct=60,
                merchant_ids=[merchant],
            ),
            Coupon(name="寄递券", kind=CouponKind.SHIPPING, face_value_fen=500, quantity=2000),
        ],
        merchant_ids=[merchant],
        kpi_new_friends=3000,
        kpi_conversions=200,
        kpi_deposits_fen=1_000_000_000,
        expected_redemption_pct=40,
    )
    return design.model_copy(update=changes)


def make_staff(session: Session, outlet_code: str, name: str, *, active: bool = True) -> int:
    from db.models import Staff, StaffRole

    outlet = session.exec(select(OrgUnit).where(OrgUnit.code == outlet_code)).one()
    staff = Staff(
        outlet_id=outlet.id,
        name=name,
        role=StaffRole.MARKETER,
        wecom_userid=f"wx_{outlet_code}_{name}",
        contact_url=f"https://work.weixin.qq.com/ca/{outlet_code}-{name}",
        active=active,
    )
    session.add(staff)
    session.commit()
    return staff.id


def make_campaign(session: Session, city_code: str, name: str, state: str = "approved") -> int:
    """A complete campaign of a city taken to `state` (draft, submitted, approved, rejected,
    scheduled, running, ended) through the services, reviewed at one stage by the user
    `factory_reviewer` (created with the stage when there is none)."""
    from core.campaigns.approvals import Decision, advance_campaign, decide_plan, submit_plan
    from core.campaigns.plans import save_draft
    from core.campaigns.states import PlanAction
    from db.models import Campaign, ReviewStage

    system = Actor.system("factory")
    design = complete_design(session, city_code, name)
    cid = save_draft(session, actor=system, design=design).id
    if state == "draft":
        return cid
    if session.exec(select(ReviewStage)).first() is None:
        make_user(session, "factory_reviewer", Role.PROVINCE_REVIEWER)
        make_stages(session, ["factory_reviewer"])
    submit_plan(session, actor=system, campaign_id=cid)
    if state == "submitted":
        return cid
    reviewer = actor_for_user(session, "factory_reviewer")
    rejected = state == "rejected"
    decide_plan(
        session,
        actor=reviewer,
        campaign_id=cid,
        decision=Decision.REJECT if rejected else Decision.APPROVE,
        comment="不符合要求" if rejected else "",
        expected_lock=session.get(Campaign, cid).lock_version,
    )
    steps = {"scheduled": 1, "running": 2, "ended": 3}.get(state, 0)
    for action in (PlanAction.SCHEDULE, PlanAction.START, PlanAction.END)[:steps]:
        advance_campaign(session, actor=system, campaign_id=cid, action=action)
    return cid
