"""The demo seed gives the ended and the running demo campaigns coupon events and a lift
the 复盘 can measure; the ended one is frozen."""

from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, select

from core.demo.seed import seed_demo
from core.platform.permissions import Actor
from core.results.retrospective import retrospective
from db.models import Campaign, CouponEvent, PlanState, Retrospective

END = date(2026, 11, 24)


def test_demo_campaigns_have_coupons_spend_and_an_uplift(session: Session) -> None:
    summary = seed_demo(session, end_date=END, days=120, city_limit=3)
    assert summary.coupon_events > 0
    session.rollback()
    ended = session.exec(select(Campaign).where(Campaign.state == PlanState.ENDED)).first()
    running = session.exec(select(Campaign).where(Campaign.state == PlanState.RUNNING)).first()
    for campaign in (ended, running):
        count = sa.select(sa.func.count()).where(CouponEvent.campaign_id == campaign.id)
        assert session.execute(count).scalar_one() > 0
    assert session.get(Retrospective, ended.id) is not None
    report = retrospective(session, actor=Actor.system("t"), campaign_id=ended.id)
    assert report["spend_post_fen"] > 0 and report["spend_merchant_fen"] > 0
    friends = report["uplift"]["new_friends"]
    assert friends["per_outlet"] is not None, report["uplift_reason"]
    assert friends["ci_low"] > 0  # the lift the seed put in is found
    again = seed_demo(session, end_date=END, days=120, city_limit=3)
    assert again.coupon_events == 0
