"""What a campaign actually spent (实际支出): the discount of every redeemed coupon, split
between the post and the merchants by its coupon line's funding split, against the
approved budget and the city's yearly cap; and the alerts at 90 % and 100 % of it.

The approved budget is the post's part at full redemption of the approved plan (the most
the plan allowed the post to pay); the expected figure (at the planned redemption rate) is
shown beside it. Shares are exact fractions, rounded half up once per coupon line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns import stages
from core.campaigns.budget import COMMITTED_STATES, compute
from core.campaigns.design import CampaignDesign
from core.platform import notifications
from core.platform.formatting import format_yuan, round_half_up
from db.models import (
    Campaign,
    CityBudget,
    CouponEvent,
    CouponEventKind,
    Role,
    SpendAlert,
    User,
)

ALERT_THRESHOLDS = (90, 100)


@dataclass(frozen=True)
class LineSpend:
    line: int  # 1-based coupon line of the design
    name: str
    post_share_pct: int
    issued: int
    claimed: int
    redeemed: int
    expired: int
    discount_fen: int  # sum of the actual discount of redeemed coupons
    post_fen: int
    merchant_fen: int


@dataclass(frozen=True)
class Spend:
    lines: list[LineSpend]
    approved_post_fen: int  # post's part at full redemption of the approved plan
    expected_post_fen: int  # at the plan's expected redemption rate
    approved_total_fen: int
    cap_fen: int | None  # the city's yearly cap (year of the campaign's start)
    city_spent_fen: int  # actual post spend of all the city's campaigns that year
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def post_fen(self) -> int:
        return sum(line.post_fen for line in self.lines)

    @property
    def merchant_fen(self) -> int:
        return sum(line.merchant_fen for line in self.lines)

    @property
    def total_fen(self) -> int:
        return self.post_fen + self.merchant_fen

    @property
    def used_pct(self) -> float | None:
        """Post spend as a percentage of the approved post budget."""
        if self.approved_post_fen <= 0:
            return None
        return 100 * self.post_fen / self.approved_post_fen


def _line_totals(session: Session, campaign_id: int) -> dict[tuple[int, str], tuple[int, int]]:
    """(line, kind) -> (events, discount fen) of one campaign."""
    query = (
        sa.select(
            CouponEvent.coupon_line,
            CouponEvent.kind,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(CouponEvent.discount_fen), 0),
        )
        .where(CouponEvent.campaign_id == campaign_id)
        .group_by(CouponEvent.coupon_line, CouponEvent.kind)
    )
    return {
        (line, CouponEventKind(kind).value): (int(n), int(total))
        for line, kind, n, total in session.execute(query)
    }


def split(discount_fen: int, post_share_pct: int) -> tuple[int, int]:
    """(post, merchant) parts of a line's discount."""
    post = round_half_up(Fraction(discount_fen * post_share_pct, 100))
    return post, discount_fen - post


def campaign_spend(session: Session, campaign: Campaign) -> Spend:
    design = CampaignDesign.model_validate(campaign.design)
    totals = _line_totals(session, campaign.id)
    lines = []
    for number, coupon in enumerate(design.coupons, start=1):

        def count(kind: CouponEventKind, number: int = number) -> int:
            return totals.get((number, kind.value), (0, 0))[0]

        discount = totals.get((number, CouponEventKind.REDEEMED.value), (0, 0))[1]
        post, merchant = split(discount, coupon.post_share_pct)
        lines.append(
            LineSpend(
                number,
                coupon.name or coupon.kind.label,
                coupon.post_share_pct,
                count(CouponEventKind.ISSUED),
                count(CouponEventKind.CLAIMED),
                count(CouponEventKind.REDEEMED),
                count(CouponEventKind.EXPIRED),
                discount,
                post,
                merchant,
            )
        )
    budget = compute(design)
    cap = session.get(CityBudget, (campaign.city_id, campaign.start_date.year))
    counts = {
        kind.value: sum(n for (_, k), (n, _) in totals.items() if k == kind.value)
        for kind in CouponEventKind
    }
    return Spend(
        lines=lines,
        approved_post_fen=budget.post_full_fen,
        expected_post_fen=budget.post_expected_fen,
        approved_total_fen=budget.full_fen,
        cap_fen=cap.cap_fen if cap else None,
        city_spent_fen=_city_spent(session, campaign, lines),
        counts=counts,
    )


def _city_spent(session: Session, campaign: Campaign, own: list[LineSpend]) -> int:
    """Actual post spend of the city's committed campaigns starting in the same year."""
    others = session.exec(
        select(Campaign).where(
            Campaign.city_id == campaign.city_id,
            Campaign.state.in_(COMMITTED_STATES),
            Campaign.id != campaign.id,
            sa.extract("year", Campaign.start_date) == campaign.start_date.year,
        )
    ).all()
    spent = sum(line.post_fen for line in own)
    for other in others:
        design = CampaignDesign.model_validate(other.design)
        totals = _line_totals(session, other.id)
        for number, coupon in enumerate(design.coupons, start=1):
            discount = totals.get((number, CouponEventKind.REDEEMED.value), (0, 0))[1]
            spent += split(discount, coupon.post_share_pct)[0]
    return spent


def campaign_people(session: Session, campaign: Campaign) -> list[int]:
    """Who hears about a campaign's results: its city's planners (and whoever created it)
    and the reviewers of every review stage."""
    planners = session.exec(
        select(User.id).where(
            User.role == Role.CITY_PLANNER, User.active, User.org_id == campaign.city_id
        )
    ).all()
    reviewers = {uid for stage in stages.stages(session) for uid in stage.reviewer_ids}
    creator = [campaign.created_by] if campaign.created_by else []
    return sorted({*planners, *reviewers, *creator})


def spend_alerts(session: Session) -> int:
    """Tell the planner and the stage reviewers once a running or ended campaign's post
    spend passes 90 % and again at 100 % of its approved budget; each threshold once
    (the `spend_alert` row is the memory). Runs inside the caller's transaction."""
    campaigns = session.exec(
        select(Campaign).where(Campaign.state.in_(COMMITTED_STATES)).order_by(Campaign.id)
    ).all()
    sent = 0
    for campaign in campaigns:
        spend = campaign_spend(session, campaign)
        used = spend.used_pct
        if used is None:
            continue
        done = set(
            session.exec(
                select(SpendAlert.threshold_pct).where(SpendAlert.campaign_id == campaign.id)
            ).all()
        )
        for threshold in ALERT_THRESHOLDS:
            if used < threshold or threshold in done:
                continue
            session.add(
                SpendAlert(
                    campaign_id=campaign.id, threshold_pct=threshold, spend_fen=spend.post_fen
                )
            )
            sent += notifications.notify(
                session,
                campaign_people(session, campaign),
                title=f"活动支出已达预算的 {threshold}%：{campaign.name}",
                body=(
                    f"「{campaign.name}」邮政实际出资 {format_yuan(spend.post_fen)}，"
                    f"已达批准预算 {format_yuan(spend.approved_post_fen)} 的 {used:.0f}%。"
                ),
                link=f"results?campaign={campaign.id}",
                dedupe_key=f"spend:{campaign.id}:{threshold}",
            )
    return sent
