"""Outlet and city leaderboards (网点排行 / 市州排名): one engine for the pages and the CLI.

Ranking rules (DESIGN.md): descending by the metric, competition style (1, 2, 2, 4), ties
listed by outlet code; every outlet of the scope is ranked (no data = 0 for flows, last
known stock for stocks); rank change compares with the previous period of equal length.
Values come from the per-day snapshots (core/metrics/snapshots.py), so any range costs the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import snapshots
from core.metrics.values import METRICS, MetricKind, MetricSpec, period_values
from core.platform.directory import OutletDirectory, outlet_directory
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.periods import Period
from core.platform.permissions import Action, Actor, ensure_allowed
from db.models import DailyMetric, OrgLevel, OrgUnit

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


def _metric(key: str) -> MetricSpec:
    if key not in METRICS:
        raise ValidationFailed(
            [FieldProblem("metric", f"未知指标 {key}，可选：{'、'.join(METRICS)}")]
        )
    return METRICS[key]


def _scope_unit(session: Session, query: BoardQuery) -> OrgUnit:
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


def _scope_label(directory: OutletDirectory, unit: OrgUnit) -> str:
    if unit.level == OrgLevel.COUNTY:
        return f"{directory.unit_names.get(unit.city_id, '')} · {unit.name}"
    return unit.name


@dataclass
class _Ranked:
    """Values and ranks of one metric over the outlets of a scope, current and previous."""

    positions: np.ndarray  # directory positions in scope
    values: np.ndarray
    order: np.ndarray
    ranks: np.ndarray
    previous_ranks: np.ndarray | None
    reported: np.ndarray


@dataclass(frozen=True)
class _PeriodData:
    """Every outlet's values over a period and the previous one (None: nothing to compare)."""

    current: dict[str, np.ndarray]
    previous: dict[str, np.ndarray] | None


def _period_data(
    session: Session, directory: OutletDirectory, period: Period, keys: list[str] | None = None
) -> _PeriodData:
    current = period_values(session, directory, period.start, period.end, keys)
    first, prev = snapshots.first_date(session), period.previous()
    if first is None or prev.end < first:
        return _PeriodData(current, None)
    return _PeriodData(current, period_values(session, directory, prev.start, prev.end, keys))


def _rank_values(
    directory: OutletDirectory, spec: MetricSpec, mask: np.ndarray, data: _PeriodData
) -> _Ranked:
    positions = directory.positions(mask)
    ids = directory.ids[positions]
    tiebreak = directory.code_order[ids]
    values = data.current[spec.key][ids]
    order, ranks = competition_ranks(values, tiebreak)
    previous_ranks = None
    if data.previous is not None:
        _, previous_ranks = competition_ranks(data.previous[spec.key][ids], tiebreak)
        previous_ranks = np.where(data.previous["reported"][ids], previous_ranks, -1)
    return _Ranked(positions, values, order, ranks, previous_ranks, data.current["reported"][ids])


def _rank_scope(
    session: Session, directory: OutletDirectory, spec: MetricSpec, period: Period, mask: np.ndarray
) -> _Ranked:
    return _rank_values(directory, spec, mask, _period_data(session, directory, period, [spec.key]))


def _targets(session: Session, actor: Actor, query: BoardQuery) -> dict[int, int]:
    if query.campaign_id is None:
        return {}
    from core.campaigns.plans import ensure_campaign_allowed, load_campaign
    from core.campaigns.targets import outlet_targets

    campaign = load_campaign(session, query.campaign_id)
    ensure_campaign_allowed(session, actor, Action.VIEW_METRICS, campaign)
    return outlet_targets(session, campaign_id=campaign.id, metric=query.metric)


def _row(
    directory: OutletDirectory,
    ranked: _Ranked,
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
    spec = _metric(query.metric)
    unit = _scope_unit(session, query)
    ensure_allowed(actor, Action.VIEW_METRICS, unit)
    directory = outlet_directory(session)
    mask = directory.scope_mask(
        city_id=query.city_id or (unit.city_id if unit.level == OrgLevel.COUNTY else None),
        county_id=query.county_id,
    )
    ranked = _rank_scope(session, directory, spec, query.period, mask)
    targets = _targets(session, actor, query)
    detail = directory.mask_for(actor, Action.VIEW_OUTLET_DETAIL)
    rows = [
        _row(directory, ranked, int(i), n + 1, actor.outlet_id, targets, detail)
        for n, i in enumerate(ranked.order[: query.top])
    ]
    mine = None
    if actor.outlet_id is not None:
        where = np.flatnonzero(directory.ids[ranked.positions] == actor.outlet_id)
        if len(where):
            index = int(where[0])
            position = int(np.flatnonzero(ranked.order == index)[0]) + 1
            mine = _row(directory, ranked, index, position, actor.outlet_id, targets, detail)
    return Board(
        metric=spec,
        period=query.period,
        previous=query.period.previous(),
        scope_label=_scope_label(directory, unit),
        outlet_count=len(ranked.positions),
        rows=rows,
        mine=mine,
        data_until=snapshots.latest_date(session),
        total=int(ranked.values.sum()),
        values=ranked.values.tolist(),
    )


# --- one outlet ------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricMove:
    key: str
    label: str
    is_money: bool
    value: int
    previous_value: int
    rank: int
    previous_rank: int | None

    @property
    def change(self) -> int | None:
        return None if self.previous_rank is None else self.previous_rank - self.rank


@dataclass(frozen=True)
class OutletDetail:
    row: BoardRow
    metric: MetricSpec
    period: Period
    scope_label: str
    outlet_count: int
    province_rank: int
    province_count: int
    next_name: str | None
    gap_to_next: int | None  # how much more to pass the next place
    gap_to_top10: int | None
    daily: list[tuple[date, int]]
    moves: list[MetricMove]


def outlet_detail(
    session: Session, *, actor: Actor, outlet_id: int, query: BoardQuery
) -> OutletDetail:
    """Drill-down of one outlet: rank, gaps, daily trend and which metrics moved."""
    outlet = session.get(OrgUnit, outlet_id)
    if outlet is None or outlet.level != OrgLevel.OUTLET:
        raise NotFound("网点不存在")
    ensure_allowed(actor, Action.VIEW_OUTLET_DETAIL, outlet)
    spec = _metric(query.metric)
    unit = _scope_unit(session, query)
    directory = outlet_directory(session)
    mask = directory.scope_mask(
        city_id=unit.city_id if unit.level != OrgLevel.PROVINCE else None, county_id=query.county_id
    )
    if not mask[directory.position_of(outlet_id)]:
        mask = directory.scope_mask(
            city_id=outlet.city_id
        )  # the board scope does not hold it: use its city
        unit = session.get(OrgUnit, outlet.city_id)
    data = _period_data(session, directory, query.period)  # every metric: the moves need them
    ranked = _rank_values(directory, spec, mask, data)
    index = int(np.flatnonzero(directory.ids[ranked.positions] == outlet_id)[0])
    position = int(np.flatnonzero(ranked.order == index)[0])
    row = _row(directory, ranked, index, position + 1, actor.outlet_id)
    next_name, gap_next = _gap_to_next(directory, ranked, position)
    top10 = int(ranked.values[ranked.order[min(9, len(ranked.order) - 1)]])
    province = _rank_values(directory, spec, directory.scope_mask(), data)
    province_index = int(np.flatnonzero(directory.ids[province.positions] == outlet_id)[0])
    return OutletDetail(
        row=row,
        metric=spec,
        period=query.period,
        scope_label=_scope_label(directory, unit),
        outlet_count=len(ranked.positions),
        province_rank=int(province.ranks[province_index]),
        province_count=len(province.positions),
        next_name=next_name,
        gap_to_next=gap_next,
        gap_to_top10=top10 - row.value if row.rank > 10 and top10 > row.value else None,
        daily=_daily(session, outlet_id, spec, query.period),
        moves=_moves(directory, mask, outlet_id, data),
    )


def _gap_to_next(
    directory: OutletDirectory, ranked: _Ranked, position: int
) -> tuple[str | None, int | None]:
    """The outlet just above (strictly better) and how much more it takes to pass it."""
    value = ranked.values[ranked.order[position]]
    better = ranked.values[ranked.order[:position]]
    count = int((better > value).sum())
    if count == 0:
        return None, None
    above = int(ranked.order[count - 1])
    return directory.names[int(ranked.positions[above])], int(ranked.values[above] - value)


@dataclass(frozen=True)
class Position:
    """Where the actor's own outlet stands in its city (for the home page)."""

    row: BoardRow
    outlet_count: int
    scope_label: str
    next_name: str | None
    gap_to_next: int | None


def my_position(session: Session, *, actor: Actor, metric: str, period: Period) -> Position | None:
    if actor.outlet_id is None:
        return None
    outlet = session.get(OrgUnit, actor.outlet_id)
    ensure_allowed(actor, Action.VIEW_OUTLET_DETAIL, outlet)
    directory = outlet_directory(session)
    ranked = _rank_scope(
        session, directory, _metric(metric), period, directory.scope_mask(city_id=outlet.city_id)
    )
    index = int(np.flatnonzero(directory.ids[ranked.positions] == actor.outlet_id)[0])
    position = int(np.flatnonzero(ranked.order == index)[0])
    next_name, gap = _gap_to_next(directory, ranked, position)
    label = directory.unit_names.get(outlet.city_id, "")
    return Position(
        _row(directory, ranked, index, position + 1, actor.outlet_id),
        len(ranked.positions),
        label,
        next_name,
        gap,
    )


def _moves(
    directory: OutletDirectory, mask: np.ndarray, outlet_id: int, data: _PeriodData
) -> list[MetricMove]:
    moves = []
    for spec in METRICS.values():
        ranked = _rank_values(directory, spec, mask, data)
        index = int(np.flatnonzero(directory.ids[ranked.positions] == outlet_id)[0])
        # before the first data there is nothing: every value was zero
        before = data.previous[spec.key][outlet_id] if data.previous is not None else 0
        prev_rank = None
        if ranked.previous_ranks is not None and ranked.previous_ranks[index] > 0:
            prev_rank = int(ranked.previous_ranks[index])
        moves.append(
            MetricMove(
                spec.key,
                spec.label,
                spec.is_money,
                int(ranked.values[index]),
                int(before),
                int(ranked.ranks[index]),
                prev_rank,
            )
        )
    return sorted(moves, key=lambda m: -abs(m.change or 0))


def _daily(
    session: Session, outlet_id: int, spec: MetricSpec, period: Period
) -> list[tuple[date, int]]:
    """The outlet's value of `spec` on each day of the period (stocks carried forward)."""
    column = getattr(DailyMetric, spec.daily_column)
    rows = dict(
        session.execute(
            sa.select(DailyMetric.date, column).where(
                DailyMetric.outlet_id == outlet_id,
                DailyMetric.date.between(period.start, period.end),
            )
        ).all()
    )
    carried = 0
    if spec.kind is MetricKind.STOCK:
        before = session.execute(
            sa.select(column)
            .where(DailyMetric.outlet_id == outlet_id, DailyMetric.date < period.start)
            .order_by(DailyMetric.date.desc())
            .limit(1)
        ).scalar()
        carried = before or 0
    horizon = snapshots.latest_date(session) or period.start
    series = []
    day = period.start
    while day <= min(period.end, horizon):
        if day in rows:
            carried = rows[day] if spec.kind is MetricKind.STOCK else carried
            series.append((day, int(rows[day])))
        else:
            series.append((day, carried if spec.kind is MetricKind.STOCK else 0))
        day += timedelta(days=1)
    return series


# --- cities ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CityRow:
    city_id: int
    name: str
    outlets: int
    total: int
    average: Fraction  # per outlet, exact
    rank_total: int
    rank_average: int
    previous_rank_total: int | None

    @property
    def change(self) -> int | None:
        return (
            None if self.previous_rank_total is None else self.previous_rank_total - self.rank_total
        )


def city_ranking(session: Session, *, actor: Actor, metric: str, period: Period) -> list[CityRow]:
    """Cities by total and by average per outlet (all outlets count, reporting or not)."""
    ensure_allowed(actor, Action.VIEW_CITY_RANKING)
    spec = _metric(metric)
    directory = outlet_directory(session)
    cities = session.execute(
        sa.select(OrgUnit.id, OrgUnit.name, OrgUnit.code)
        .where(OrgUnit.level == OrgLevel.CITY)
        .order_by(OrgUnit.code)
    ).all()
    if not cities:
        return []
    current = _city_totals(session, directory, spec, period, cities)
    first = snapshots.first_date(session)
    previous_ranks: dict[int, int] | None = None
    if first is not None and period.previous().end >= first:
        before = _city_totals(session, directory, spec, period.previous(), cities)
        previous_ranks = _ranks({cid: total for cid, (total, _) in before.items()})
    rank_total = _ranks({cid: total for cid, (total, _) in current.items()})
    averages = {
        cid: Fraction(total, count) if count else Fraction(0)
        for cid, (total, count) in current.items()
    }
    rank_average = _ranks(averages)
    rows = [
        CityRow(
            city_id=cid,
            name=name,
            outlets=current[cid][1],
            total=current[cid][0],
            average=averages[cid],
            rank_total=rank_total[cid],
            rank_average=rank_average[cid],
            previous_rank_total=previous_ranks[cid] if previous_ranks else None,
        )
        for cid, name, _code in cities
    ]
    return sorted(rows, key=lambda r: (r.rank_total, r.name))


def _city_totals(
    session: Session, directory: OutletDirectory, spec: MetricSpec, period: Period, cities: list
) -> dict[int, tuple[int, int]]:
    values = period_values(session, directory, period.start, period.end, [spec.key])[spec.key][
        directory.ids
    ]
    result = {}
    for cid, _name, _code in cities:
        mask = directory.city_ids == cid
        result[cid] = (int(values[mask].sum()), int(mask.sum()))
    return result


def _ranks(values: dict[int, object]) -> dict[int, int]:
    ordered = sorted(values.values(), reverse=True)
    return {key: 1 + sum(1 for v in ordered if v > value) for key, value in values.items()}


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


def rank_history(
    session: Session, *, actor: Actor, outlet_id: int, metric: str, days: int = 90
) -> list[tuple[date, int, int]]:
    """(day, province rank, city rank) of an outlet from the daily rank snapshots (each over
    the 30 days ending that day): the trend of where it stands."""
    from db.models import RankSnapshot

    outlet = session.get(OrgUnit, outlet_id)
    if outlet is None:
        raise NotFound("网点不存在")
    ensure_allowed(actor, Action.VIEW_OUTLET_DETAIL, outlet)
    rows = session.execute(
        sa.select(RankSnapshot.date, RankSnapshot.province_rank, RankSnapshot.city_rank)
        .where(RankSnapshot.metric == _metric(metric).key)
        .order_by(RankSnapshot.date.desc())
        .limit(days)
    ).all()
    history = []
    for day, province, city in reversed(rows):
        p, c = np.frombuffer(province, dtype="<i4"), np.frombuffer(city, dtype="<i4")
        if outlet_id < len(p) and p[outlet_id] > 0:
            history.append((day, int(p[outlet_id]), int(c[outlet_id])))
    return history
