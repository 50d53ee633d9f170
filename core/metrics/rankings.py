"""The outlet leaderboard (网点排行): one engine for the pages, the CLI, one outlet's detail
(`outlet_detail`) and the city ranking (`cities`).

Ranking rules (DESIGN.md): descending by the metric, competition style (1, 2, 2, 4), ties
listed by outlet code; every outlet of the scope is ranked (no data = 0 for flows, last
known stock for stocks); rank change compares with the previous period of equal length.
Values come from the per-day snapshots (`snapshots`), so any range costs the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import snapshots
from core.metrics.values import METRICS, MetricSpec, period_values
from core.platform.directory import OutletDirectory, outlet_directory
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.periods import Period
from core.platform.permissions import Action, Actor, ensure_allowed
from db.models import OrgLevel, OrgUnit

TOP_CHOICES = (10, 20, 50, 100)


@dataclass(frozen=True)
class BoardQuery:
    metric: str
    period: Period
    city_id: int | None = None
    county_id: int | None = None
    top: int = 100
    campaign_id: int | None = None  # targets come from this campaign's KPI


@dataclass(frozen=True)
class BoardRow:
    position: int  # display order, 1-based
    rank: int
    outlet_id: int
    code: str
    name: str
    county: str
    city: str
    value: int
    previous_rank: int | None  # None: no data in the previous period
    reported: bool  # has the outlet ever reported by the period end
    is_mine: bool = False
    target: int | None = None  # this outlet's share of the campaign KPI, when there is one
    drillable: bool = False  # the actor may open this outlet's detail (outlet_detail)

    @property
    def completion(self) -> Fraction | None:
        """Share of the target reached (1 = 100%)."""
        return None if not self.target else Fraction(self.value, self.target)

    @property
    def change(self) -> int | None:
        """Places gained since the previous period (negative: lost)."""
        return None if self.previous_rank is None else self.previous_rank - self.rank


@dataclass(frozen=True)
class Board:
    metric: MetricSpec
    period: Period
    previous: Period
    scope_label: str
    outlet_count: int
    rows: list[BoardRow]
    mine: BoardRow | None
    data_until: date | None
    total: int
    values: list[int] = field(repr=False)  # every outlet's value in scope (distribution chart)


def competition_ranks(values: np.ndarray, tiebreak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(display order, rank per element): descending values, ties share the best rank and
    are ordered by `tiebreak` (the outlet code order)."""
    order = np.lexsort((tiebreak, -values))
    descending = -values[order]
    better = np.searchsorted(descending, descending, side="left")  # how many are strictly greater
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = better + 1
    return order, ranks


def metric_spec(key: str, session: Session | None = None) -> MetricSpec:
    """A builtin metric, or (given a session) any active outlet metric of the registry."""
    if session is not None:
        from core.metrics.registry import spec_for

        return spec_for(session, key)
    if key not in METRICS:
        raise ValidationFailed(
            [FieldProblem("metric", f"未知指标 {key}，可选：{'、'.join(METRICS)}")]
        )
    return METRICS[key]


def scope_unit(session: Session, query: BoardQuery) -> OrgUnit:
    if query.county_id is not None:
        unit = session.get(OrgUnit, query.county_id)
        if (
            unit is None
            or unit.level != OrgLevel.COUNTY
            or (query.city_id and unit.city_id != query.city_id)
        ):
            raise NotFound("所选区县不存在")
        return unit
    if query.city_id is not None:
        unit = session.get(OrgUnit, query.city_id)
        if unit is None or unit.level != OrgLevel.CITY:
            raise NotFound("所选城市不存在")
        return unit
    unit = (
        session.execute(sa.select(OrgUnit).where(OrgUnit.level == OrgLevel.PROVINCE))
        .scalars()
        .first()
    )
    if unit is None:
        raise NotFound("还没有机构数据")
    return unit


def scope_label(directory: OutletDirectory, unit: OrgUnit) -> str:
    if unit.level == OrgLevel.COUNTY:
        return f"{directory.unit_names.get(unit.city_id, '')} · {unit.name}"
    return unit.name


@dataclass
class Ranked:
    """Values and ranks of one metric over the outlets of a scope, current and previous."""

    positions: np.ndarray  # directory positions in scope
    values: np.ndarray
    order: np.ndarray
    ranks: np.ndarray
    previous_ranks: np.ndarray | None
    reported: np.ndarray


@dataclass(frozen=True)
class PeriodData:
    """Every outlet's values over a period and the previous one (None: nothing to compare)."""

    current: dict[str, np.ndarray]
    previous: dict[str, np.ndarray] | None


def period_data(
    session: Session, directory: OutletDirectory, period: Period, keys: list[str] | None = None
) -> PeriodData:
    current = period_values(session, directory, period.start, period.end, keys)
    first, prev = snapshots.first_date(session), period.previous()
    if first is None or prev.end < first:
        return PeriodData(current, None)
    return PeriodData(current, period_values(session, directory, prev.start, prev.end, keys))


def rank_values(
    directory: OutletDirectory, spec: MetricSpec, mask: np.ndarray, data: PeriodData
) -> Ranked:
    positions = directory.positions(mask)
    ids = directory.ids[positions]
    tiebreak = directory.code_order[ids]
    values = data.current[spec.key][ids]
    order, ranks = competition_ranks(values, tiebreak)
    previous_ranks = None
    if data.previous is not None:
        _, previous_ranks = competition_ranks(data.previous[spec.key][ids], tiebreak)
        previous_ranks = np.where(data.previous["reported"][ids], previous_ranks, -1)
    return Ranked(positions, values, order, ranks, previous_ranks, data.current["reported"][ids])


def rank_scope(
    session: Session, directory: OutletDirectory, spec: MetricSpec, period: Period, mask: np.ndarray
) -> Ranked:
    return rank_values(directory, spec, mask, period_data(session, directory, period, [spec.key]))


def _targets(session: Session, actor: Actor, query: BoardQuery) -> dict[int, int]:
    if query.campaign_id is None:
        # Imported per-outlet targets of exactly this period, when there are any.
        from core.metrics.targets import period_targets

        return period_targets(
            session, start=query.period.start, end=query.period.end, metric=query.metric
        )
    from core.campaigns.plans import ensure_campaign_allowed, load_campaign
    from core.campaigns.targets import outlet_targets

    campaign = load_campaign(session, query.campaign_id)
    ensure_campaign_allowed(session, actor, Action.VIEW_METRICS, campaign)
    return outlet_targets(session, campaign_id=campaign.id, metric=query.metric)


def board_row(
    directory: OutletDirectory,
    ranked: Ranked,
    index: int,
    position: int,
    mine: int | None,
    targets: dict[int, int] | None = None,
    detail: np.ndarray | None = None,
) -> BoardRow:
    at = int(ranked.positions[index])
    outlet_id = int(directory.ids[at])
    previous = None
    if ranked.previous_ranks is not None and ranked.previous_ranks[index] > 0:
        previous = int(ranked.previous_ranks[index])
    return BoardRow(
        position=position,
        rank=int(ranked.ranks[index]),
        outlet_id=outlet_id,
        code=directory.codes[at],
        name=directory.names[at],
        county=directory.unit_names.get(int(directory.county_ids[at]), ""),
        city=directory.unit_names.get(int(directory.city_ids[at]), ""),
        value=int(ranked.values[index]),
        previous_rank=previous,
        reported=bool(ranked.reported[index]),
        is_mine=outlet_id == mine,
        target=(targets or {}).get(outlet_id),
        drillable=bool(detail[at]) if detail is not None else False,
    )


def leaderboard(session: Session, *, actor: Actor, query: BoardQuery) -> Board:
    """The top N outlets of a scope for one metric and period, plus the actor's own outlet."""
    spec = metric_spec(query.metric, session)
    unit = scope_unit(session, query)
    ensure_allowed(actor, Action.VIEW_METRICS, unit)
    directory = outlet_directory(session)
    mask = directory.scope_mask(
        city_id=query.city_id or (unit.city_id if unit.level == OrgLevel.COUNTY else None),
        county_id=query.county_id,
    )
    ranked = rank_scope(session, directory, spec, query.period, mask)
    targets = _targets(session, actor, query)
    detail = directory.mask_for(actor, Action.VIEW_OUTLET_DETAIL)
    rows = [
        board_row(directory, ranked, int(i), n + 1, actor.outlet_id, targets, detail)
        for n, i in enumerate(ranked.order[: query.top])
    ]
    mine = None
    if actor.outlet_id is not None:
        where = np.flatnonzero(directory.ids[ranked.positions] == actor.outlet_id)
        if len(where):
            index = int(where[0])
            position = int(np.flatnonzero(ranked.order == index)[0]) + 1
            mine = board_row(directory, ranked, index, position, actor.outlet_id, targets, detail)
    return Board(
        metric=spec,
        period=query.period,
        previous=query.period.previous(),
        scope_label=scope_label(directory, unit),
        outlet_count=len(ranked.positions),
        rows=rows,
        mine=mine,
        data_until=snapshots.latest_date(session),
        total=int(ranked.values.sum()),
        values=ranked.values.tolist(),
    )


# --- one outlet ------------------------------------------------------------------------


# --- cities ---------------------------------------------------------------------------------


# --- what a user may choose -------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeChoices:
    """The board scopes offered to a user: the province (when allowed), cities, counties."""

    province: bool
    cities: list[tuple[int, str]]
    counties: dict[int, list[tuple[int, str]]]  # city id → its counties


def board_scopes(session: Session, *, actor: Actor) -> ScopeChoices:
    from core.platform.org import units_in_scope
    from core.platform.permissions import Scope, scope_of

    ensure_allowed(actor, Action.VIEW_METRICS)
    cities = units_in_scope(session, actor=actor, action=Action.VIEW_METRICS, level=OrgLevel.CITY)
    counties: dict[int, list[tuple[int, str]]] = {}
    for county in units_in_scope(
        session, actor=actor, action=Action.VIEW_METRICS, level=OrgLevel.COUNTY
    ):
        counties.setdefault(county.city_id, []).append((county.id, county.name))
    return ScopeChoices(
        province=scope_of(actor, Action.VIEW_METRICS) is Scope.PROVINCE,
        cities=[(c.id, c.name) for c in cities],
        counties=counties,
    )
