"""Reference checks (引用校验): every id a write names — outlets, counties, merchants, staff,
a campaign — must belong to the city the write is for and lie inside the actor's scope for
the action; channel codes and posters bind only campaigns that are approved, scheduled or
running.

Services call `ensure_references` before they write, so a cross-city reference is refused
with a Chinese reason that names it, and nothing is written. This is a rule about the data,
not about the role: the CLI acts with province scope, yet `codes --city` still takes only
that city's own approved campaigns.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlmodel import Session

from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.permissions import Action, Actor, allowed
from db.models import Campaign, Merchant, OrgLevel, OrgUnit, PlanState, Staff

# The campaigns a channel code or a poster may carry (DESIGN.md, "Trust at the boundary").
BINDABLE_STATES = (PlanState.APPROVED, PlanState.SCHEDULED, PlanState.RUNNING)
_NOT_BINDABLE = {
    PlanState.REJECTED: "已被驳回",
    PlanState.ENDED: "已结束",
}  # every other state is before approval


def reference_problems(
    session: Session,
    *,
    actor: Actor,
    action: Action,
    city_id: int,
    outlets: Collection[int] = (),
    counties: Collection[int] = (),
    merchants: Collection[int] = (),
    staff: Collection[int] = (),
    campaign: int | None = None,
) -> list[FieldProblem]:
    """Every reference of a write for `city_id` that is unknown, of another city or outside
    the actor's scope for `action`; `campaign` must also be approved, scheduled or running."""
    city = session.get(OrgUnit, city_id)
    if city is None or city.level != OrgLevel.CITY:
        raise NotFound("城市不存在")
    here = _here(city)
    problems = _unit_problems(session, actor, action, city, OrgLevel.OUTLET, outlets)
    problems += _unit_problems(session, actor, action, city, OrgLevel.COUNTY, counties)
    for mid, row in _rows(session, Merchant, merchants).items():
        if row is None:
            problems.append(_missing("merchants", "商户", mid))
        elif row.city_id != city.id:
            problems.append(FieldProblem("merchants", f"商户「{row.name}」不是{here}的联盟商户"))
    problems += _staff_problems(session, actor, action, city, staff)
    if campaign is not None:
        problems += _campaign_problems(session, city, campaign)
    return problems


def ensure_references(
    session: Session,
    *,
    actor: Actor,
    action: Action,
    city_id: int,
    summary: str = "引用的数据不符合要求",
    **references: Collection[int] | int | None,
) -> None:
    """`reference_problems`, raised as ValidationFailed (with `summary`) when there are any."""
    problems = reference_problems(
        session, actor=actor, action=action, city_id=city_id, **references
    )
    if problems:
        raise ValidationFailed(problems, summary=summary)


def own_ids(session: Session, city_id: int, model: type, ids: Collection[int]) -> set[int]:
    """Those of `ids` (org units or merchants) that belong to the city today."""
    return {i for i, row in _rows(session, model, ids).items() if row and row.city_id == city_id}


def _rows(session: Session, model: type, ids: Collection[int]) -> dict[int, object | None]:
    wanted = list(dict.fromkeys(ids))
    found = {}
    for start in range(0, len(wanted), 1000):  # bounded IN lists
        chunk = wanted[start : start + 1000]
        found.update(
            {r.id: r for r in session.scalars(sa.select(model).where(model.id.in_(chunk)))}
        )
    return {i: found.get(i) for i in wanted}


def _here(city: OrgUnit) -> str:
    # "本市" is the city the write is for; its name too, for the CLI and admins who act on any.
    return f"本市（{city.name}）"


def _missing(field: str, label: str, ref_id: int) -> FieldProblem:
    return FieldProblem(field, f"所选{label}（编号 {ref_id}）不存在")


# The field and the word for each level of the tree a write may name.
_UNIT_KINDS = {OrgLevel.OUTLET: ("outlets", "网点"), OrgLevel.COUNTY: ("counties", "区县")}


def _unit_problems(
    session: Session,
    actor: Actor,
    action: Action,
    city: OrgUnit,
    level: OrgLevel,
    ids: Collection[int],
) -> list[FieldProblem]:
    field, label = _UNIT_KINDS[level]
    problems = []
    for uid, unit in _rows(session, OrgUnit, ids).items():
        if unit is None or unit.level != level:
            problems.append(_missing(field, label, uid))
        elif unit.city_id != city.id:
            problems.append(FieldProblem(field, f"所选{label}「{unit.name}」不属于{_here(city)}"))
        elif not allowed(actor, action, unit):
            problems.append(FieldProblem(field, f"所选{label}「{unit.name}」不在您的数据范围内"))
    return problems


def _staff_problems(
    session: Session, actor: Actor, action: Action, city: OrgUnit, ids: Collection[int]
) -> list[FieldProblem]:
    problems = []
    people = _rows(session, Staff, ids)
    outlets = _rows(session, OrgUnit, {s.outlet_id for s in people.values() if s is not None})
    for sid, person in people.items():
        outlet = outlets.get(person.outlet_id) if person is not None else None
        if person is None or outlet is None:
            problems.append(_missing("staff", "员工", sid))
        elif outlet.city_id != city.id:
            problems.append(
                FieldProblem("staff", f"员工「{person.name}」不是{_here(city)}网点的员工")
            )
        elif not allowed(actor, action, outlet):
            problems.append(
                FieldProblem("staff", f"员工「{person.name}」所在网点不在您的数据范围内")
            )
    return problems


def _campaign_problems(session: Session, city: OrgUnit, campaign_id: int) -> list[FieldProblem]:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return [FieldProblem("campaign", f"活动 {campaign_id} 不存在")]
    if campaign.city_id != city.id:
        return [FieldProblem("campaign", f"活动「{campaign.name}」不是{_here(city)}的活动")]
    if campaign.state not in BINDABLE_STATES:
        why = _NOT_BINDABLE.get(campaign.state) or (
            f"尚未审批通过（当前为「{campaign.state.label}」）"
        )
        return [
            FieldProblem(
                "campaign",
                f"活动「{campaign.name}」{why}，不能用于活码和海报"
                "（只有已通过、待开始或进行中的活动可以）",
            )
        ]
    return []
