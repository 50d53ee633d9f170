"""The budget of a campaign (预算测算), live while the planner edits: face value at full
redemption and at the expected redemption rate, post- versus merchant-funded, cost per
targeted conversion and per 万元 of targeted deposits, against the city's yearly cap.
All amounts are integer fen; shares and rates are exact fractions rounded at the end."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import sqlalchemy as sa
from sqlmodel import Session

from core.campaigns.design import CampaignDesign
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.errors import FieldProblem, ValidationFailed
from core.platform.formatting import format_yuan, round_half_up
from core.platform.org import cities
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import Campaign, CityBudget, PlanState

# Plans whose money is spoken for: approved and later.
COMMITTED_STATES = (PlanState.APPROVED, PlanState.SCHEDULED, PlanState.RUNNING, PlanState.ENDED)


@dataclass(frozen=True)
class CouponCost:
    name: str
    full_fen: int
    post_full_fen: int
    merchant_full_fen: int


@dataclass(frozen=True)
class Budget:
    full_fen: int  # every coupon redeemed
    expected_fen: int  # at the expected redemption rate
    post_full_fen: int
    post_expected_fen: int
    merchant_full_fen: int
    merchant_expected_fen: int
    per_conversion_fen: int | None  # post expected cost per targeted conversion
    per_wan_deposits_fen: int | None  # post expected cost per 万元 of targeted deposits
    cap_fen: int | None  # the city's cap for the campaign's year
    committed_fen: int  # expected post cost of the city's other approved plans that year

    @property
    def remaining_fen(self) -> int | None:
        return None if self.cap_fen is None else self.cap_fen - self.committed_fen

    @property
    def remaining_after_fen(self) -> int | None:
        """What is left of the year's cap once this plan's expected post cost is counted."""
        return None if self.remaining_fen is None else self.remaining_fen - self.post_expected_fen

    @property
    def over_expected(self) -> bool:
        return self.remaining_fen is not None and self.post_expected_fen > self.remaining_fen

    @property
    def over_full(self) -> bool:
        return self.remaining_fen is not None and self.post_full_fen > self.remaining_fen

    def warnings(self) -> list[str]:
        if self.remaining_fen is None:
            return ["本市尚未设置年度营销预算，无法判断是否超支（请联系管理员设置）。"]
        left = format_yuan(self.remaining_fen)
        if self.over_expected:
            return [
                f"超出预算：按预计核销率，邮政出资 {format_yuan(self.post_expected_fen)}，本市年度预算剩余 {left}。"
            ]
        if self.over_full:
            return [
                f"注意：若全部核销，邮政出资 {format_yuan(self.post_full_fen)}，将超出本市年度预算剩余 {left}。"
            ]
        return []


def coupon_costs(design: CampaignDesign) -> list[CouponCost]:
    costs = []
    for coupon in design.coupons:
        full = max(coupon.face_value_fen, 0) * max(coupon.quantity, 0)
        post = round_half_up(Fraction(full * min(max(coupon.post_share_pct, 0), 100), 100))
        costs.append(CouponCost(coupon.name or coupon.kind.label, full, post, full - post))
    return costs


def compute(
    design: CampaignDesign, *, cap_fen: int | None = None, committed_fen: int = 0
) -> Budget:
    costs = coupon_costs(design)
    rate = Fraction(min(max(design.expected_redemption_pct, 0), 100), 100)
    full = sum(c.full_fen for c in costs)
    post_full = sum(c.post_full_fen for c in costs)
    post_expected = round_half_up(post_full * rate)
    expected = round_half_up(full * rate)
    per_conversion = (
        round_half_up(Fraction(post_expected, design.kpi_conversions))
        if design.kpi_conversions > 0
        else None
    )
    wan = Fraction(design.kpi_deposits_fen, 1_000_000)  # targeted deposits in 万元
    per_wan = round_half_up(post_expected / wan) if wan > 0 else None
    return Budget(
        full_fen=full,
        expected_fen=expected,
        post_full_fen=post_full,
        post_expected_fen=post_expected,
        merchant_full_fen=full - post_full,
        merchant_expected_fen=expected - post_expected,
        per_conversion_fen=per_conversion,
        per_wan_deposits_fen=per_wan,
        cap_fen=cap_fen,
        committed_fen=committed_fen,
    )


def budget_for(
    session: Session, design: CampaignDesign, *, exclude_campaign_id: int | None = None
) -> Budget:
    """`compute` with the city's cap for the campaign's start year and what is committed."""
    year = design.start_date.year
    cap = session.get(CityBudget, (design.city_id, year))
    query = sa.select(Campaign.id, Campaign.design).where(
        Campaign.city_id == design.city_id,
        Campaign.state.in_(COMMITTED_STATES),
        sa.extract("year", Campaign.start_date) == year,
    )
    committed = 0
    for campaign_id, other in session.execute(query):
        if campaign_id != exclude_campaign_id:
            committed += compute(CampaignDesign.model_validate(other)).post_expected_fen
    return compute(design, cap_fen=cap.cap_fen if cap else None, committed_fen=committed)


def set_city_budgets(session: Session, *, actor: Actor, year: int, caps: dict[int, int]) -> int:
    """Set the yearly caps (fen) of some cities at once, all or none; returns how many changed.
    Unchanged caps write nothing and leave no audit record."""
    ensure_allowed(actor, Action.MANAGE_SETTINGS)
    if not 2000 <= year <= 2100:
        raise ValidationFailed([FieldProblem("year", "年份须在 2000 至 2100 之间")])
    names = {c.id: c.name for c in cities(session)}
    problems = [
        FieldProblem(
            "cap", f"{names[c]}：预算须为非负金额" if c in names else f"没有编号为 {c} 的市州"
        )
        for c, cap in caps.items()
        if cap < 0 or c not in names
    ]
    if problems:
        raise ValidationFailed(problems, summary="预算未保存")
    changed = 0
    with write_transaction(session):
        for city_id, cap_fen in caps.items():
            row = session.get(CityBudget, (city_id, year))
            before = row.cap_fen if row else 0
            if before == cap_fen:
                continue
            session.add(_budget_row(row, city_id, year, cap_fen))
            audit.record(
                session,
                actor=actor,
                action=AuditAction.SETTINGS_CHANGE,
                target_type="city_budget",
                target_id=f"{city_id}/{year}",
                summary=f"设置{names[city_id]} {year} 年营销预算为 {format_yuan(cap_fen)}",
                before={"cap_fen": row.cap_fen} if row else None,
                after={"cap_fen": cap_fen},
            )
            changed += 1
    return changed


def _budget_row(row: CityBudget | None, city_id: int, year: int, cap_fen: int) -> CityBudget:
    if row is None:
        return CityBudget(city_id=city_id, year=year, cap_fen=cap_fen)
    row.cap_fen = cap_fen
    return row


def city_budgets(session: Session, *, actor: Actor, year: int) -> dict[int, int]:
    ensure_allowed(actor, Action.MANAGE_SETTINGS)
    rows = session.execute(
        sa.select(CityBudget.city_id, CityBudget.cap_fen).where(CityBudget.year == year)
    )
    return dict(rows.all())
