"""A small world for the campaign-results tests: the factory province, an ended campaign
of C1 in November 2026 and helpers writing coupon files."""

from __future__ import annotations

import io
from datetime import date

from sqlmodel import Session

from core.campaigns.design import CampaignDesign
from db.models import Campaign, PlanState
from tests.factories import complete_design

START, END = date(2026, 11, 1), date(2026, 11, 20)
COUPON_HEADER = (
    "事件编号,活动编号,券序号,网点编码,商户编号,客户ID,事件类型,面值(元),实际优惠(元),时间\n"
)


def ended_campaign(
    session: Session,
    city_code: str = "C1",
    *,
    start: date = START,
    end: date = END,
    state: PlanState = PlanState.ENDED,
    name: str = "11月权益日",
    **changes: object,
) -> tuple[int, CampaignDesign]:
    """A campaign row as the review would leave it (the workflow is tested elsewhere)."""
    design = complete_design(session, city_code, name, start_date=start, end_date=end, **changes)
    campaign = Campaign(
        city_id=design.city_id,
        name=design.name,
        kind=design.kind,
        start_date=start,
        end_date=end,
        state=state,
        version=1,
        design=design.model_dump(mode="json"),
    )
    session.add(campaign)
    session.commit()
    return campaign.id, design


def coupon_csv(rows: list[tuple], header: str = COUPON_HEADER) -> bytes:
    out = io.StringIO()
    out.write(header)
    for row in rows:
        out.write(",".join("" if v is None else str(v) for v in row) + "\n")
    return out.getvalue().encode("utf-8")


def add_outlets(session: Session, county_code: str, prefix: str, count: int) -> list[str]:
    """More outlets under a county (the uplift needs ten in each group)."""
    from sqlmodel import select

    from core.platform.org import recompute_ancestors
    from db.models import OrgLevel, OrgUnit

    county = session.exec(select(OrgUnit).where(OrgUnit.code == county_code)).one()
    codes = [f"{prefix}{i:02d}" for i in range(count)]
    for code in codes:
        session.add(
            OrgUnit(code=code, name=f"{code}支局", level=OrgLevel.OUTLET, parent_id=county.id)
        )
    session.flush()
    recompute_ancestors(session)
    session.commit()
    return codes


def metrics_file(rows: list[tuple]) -> bytes:
    out = io.StringIO()
    out.write(
        "date,outlet_code,new_friends,total_friends,groups,group_members,conversions,deposits\n"
    )
    for day, code, friends, conversions, deposits_fen in rows:
        out.write(f"{day},{code},{friends},100,1,10,{conversions},{deposits_fen / 100:.2f}\n")
    return out.getvalue().encode()
