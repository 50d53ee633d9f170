"""Demo campaigns in every review state, made through the same core services users go
through (so their history, versions, notifications and audit trail are real)."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns import approvals
from core.campaigns.approvals import Decision
from core.campaigns.design import (
    CampaignDesign,
    Coupon,
    CouponKind,
    RightsDayRule,
    RuleKind,
    TargetMode,
)
from core.campaigns.plans import save_draft
from core.campaigns.states import PlanAction
from core.platform.auth import actor_for_user
from core.platform.clock import utcnow
from core.platform.permissions import Actor
from db.models import Campaign, CampaignKind, Merchant, OrgLevel, OrgUnit


def _month(today: date, offset: int) -> tuple[date, date]:
    first = today.replace(day=1)
    for _ in range(abs(offset)):
        first = (
            (first + timedelta(days=32)).replace(day=1)
            if offset > 0
            else (first - timedelta(days=1)).replace(day=1)
        )
    last = ((first + timedelta(days=32)).replace(day=1)) - timedelta(days=1)
    return first, last


def _design(
    session: Session,
    city_code: str,
    name: str,
    kind: CampaignKind,
    period: tuple[date, date],
    *,
    notes: str = "",
    scale: int = 1,
) -> CampaignDesign:
    city = session.exec(select(OrgUnit).where(OrgUnit.code == city_code)).one()
    merchants = session.exec(
        select(Merchant.id).where(Merchant.city_id == city.id).order_by(Merchant.id)
    ).all()[:4]
    coupons = [
        Coupon(
            name="逢8满减券",
            kind=CouponKind.FULL_REDUCTION,
            face_value_fen=2000,
            threshold_fen=10000,
            quantity=3000 * scale,
            per_member_limit=2,
            min_star=1,
            post_share_pct=60,
            merchant_ids=merchants[:2],
        ),
        Coupon(
            name="寄递立减券",
            kind=CouponKind.SHIPPING,
            face_value_fen=500,
            quantity=5000 * scale,
            per_member_limit=1,
            min_star=2,
        ),
        Coupon(
            name="星级会员加油折扣",
            kind=CouponKind.DISCOUNT,
            face_value_fen=3000,
            discount_permille=900,
            quantity=800 * scale,
            per_member_limit=1,
            min_star=3,
            post_share_pct=50,
            merchant_ids=merchants[2:3],
        ),
    ]
    rule = RightsDayRule(kind=RuleKind.MONTH_DAYS, month_days=[8, 18, 28])
    if kind is not CampaignKind.RIGHTS_DAY:
        rule = RightsDayRule(kind=RuleKind.WEEKDAYS, weekdays=[4, 5])
    return CampaignDesign(
        name=name,
        kind=kind,
        city_id=city.id,
        start_date=period[0],
        end_date=period[1],
        target_mode=TargetMode.ALL,
        rule=rule,
        coupons=coupons,
        merchant_ids=merchants,
        kpi_new_friends=6000 * scale,
        kpi_conversions=400 * scale,
        kpi_deposits_fen=3_000_000_000 * scale,
        expected_redemption_pct=35,
        notes=notes,
    )


def seed_campaigns(session: Session, today: date) -> int:
    """Create the demo plans unless campaigns exist; returns how many were created."""
    if session.execute(sa.select(Campaign.id).limit(1)).first() is not None:
        return 0
    planner, planner2, admin = (
        actor_for_user(session, u) for u in ("planner", "planner2", "admin")
    )
    r1, r2 = actor_for_user(session, "reviewer1"), actor_for_user(session, "reviewer2")
    if None in (planner, planner2, admin, r1, r2):
        return 0
    last, this, next_ = _month(today, -1), _month(today, 0), _month(today, 1)
    after = _month(today, 2)
    plans = [
        (
            planner,
            "4301",
            f"{next_[0].month}月逢8会员权益日",
            CampaignKind.RIGHTS_DAY,
            next_,
            "draft",
            "",
        ),
        (
            planner,
            "4301",
            "双旦节日营销",
            CampaignKind.FESTIVAL,
            next_,
            "submitted",
            "理财产品最高收益可达 3.5%，欢迎到网点咨询。",
        ),
        (planner, "4301", "年货节电商直播", CampaignKind.ECOMMERCE, after, "stage2", ""),
        (
            planner,
            "4301",
            f"{this[0].month}月逢8会员权益日",
            CampaignKind.RIGHTS_DAY,
            this,
            "running",
            "",
        ),
        (
            planner,
            "4301",
            f"{last[0].month}月逢8会员权益日",
            CampaignKind.RIGHTS_DAY,
            last,
            "ended",
            "",
        ),
        (planner, "4301", "春节会员回馈季", CampaignKind.FESTIVAL, after, "returned", ""),
        (
            planner2,
            "4302",
            f"株洲{next_[0].month}月逢8权益日",
            CampaignKind.RIGHTS_DAY,
            next_,
            "approved",
            "",
        ),
        (planner2, "4302", "株洲元旦商户联盟周", CampaignKind.OTHER, next_, "scheduled", ""),
        (
            planner2,
            "4302",
            "株洲稳赚存款节",
            CampaignKind.OTHER,
            next_,
            "rejected",
            "存款稳赚不赔，零风险！",
        ),
        (planner2, "4302", "株洲暖冬权益日", CampaignKind.RIGHTS_DAY, after, "resubmitted", ""),
        (admin, "4304", "衡阳逢8会员权益日", CampaignKind.RIGHTS_DAY, next_, "overdue", ""),
        (admin, "4306", "岳阳年终客户答谢", CampaignKind.FESTIVAL, after, "stage2", ""),
    ]
    existing = set(session.exec(select(OrgUnit.code).where(OrgUnit.level == OrgLevel.CITY)).all())
    for actor, city, name, kind, period, outcome, notes in plans:
        if city not in existing:  # a shrunken test province
            continue
        design = _design(
            session, city, name, kind, period, notes=notes, scale=2 if city == "4301" else 1
        )
        campaign_id = save_draft(session, actor=actor, design=design).id
        _play(session, campaign_id, outcome, actor, admin, r1, r2)
    return session.execute(sa.select(sa.func.count()).select_from(Campaign)).scalar_one()


def _decide(
    session: Session, reviewer: Actor, campaign_id: int, decision: Decision, comment: str = ""
) -> None:
    lock = session.get(Campaign, campaign_id).lock_version
    approvals.decide_plan(
        session,
        actor=reviewer,
        campaign_id=campaign_id,
        decision=decision,
        comment=comment,
        expected_lock=lock,
    )


def _play(
    session: Session, cid: int, outcome: str, planner: Actor, admin: Actor, r1: Actor, r2: Actor
) -> None:
    """Walk a fresh draft to the demo state it should show."""
    if outcome == "draft":
        return
    approvals.submit_plan(session, actor=planner, campaign_id=cid)
    if outcome == "submitted":
        return
    if outcome == "overdue":
        session.execute(
            sa.update(Campaign)
            .where(Campaign.id == cid)
            .values(submitted_at=utcnow() - timedelta(days=6))
        )
        session.commit()
        return
    if outcome == "rejected":
        _decide(
            session,
            r1,
            cid,
            Decision.REJECT,
            "宣传用语违反金融营销宣传规定（稳赚、零风险），且存款活动不得变相提高利率。",
        )
        return
    if outcome == "resubmitted":
        _decide(session, r1, cid, Decision.RETURN, "请补充参与网点名单，并降低寄递券数量。")
        approvals.submit_plan(session, actor=planner, campaign_id=cid)
        return
    _decide(session, r1, cid, Decision.APPROVE, "专业部门审核通过。")
    if outcome == "stage2":
        return
    if outcome == "returned":
        _decide(
            session,
            r2,
            cid,
            Decision.RETURN,
            "预算超出年度剩余额度，请压缩满减券数量或提高商户出资比例。",
        )
        return
    _decide(session, r2, cid, Decision.APPROVE, "同意。")
    if outcome == "approved":
        return
    approvals.advance_campaign(session, actor=admin, campaign_id=cid, action=PlanAction.SCHEDULE)
    if outcome == "scheduled":
        return
    approvals.advance_campaign(session, actor=admin, campaign_id=cid, action=PlanAction.START)
    if outcome == "ended":
        approvals.advance_campaign(session, actor=admin, campaign_id=cid, action=PlanAction.END)
