"""One outlet's standing (网点详情): its rank and change on every metric, the gap to the next
place, its daily trend and its rank history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import snapshots
from core.metrics.rankings import (
    BoardQuery,
    BoardRow,
    PeriodData,
    Ranked,
    board_row,
    metric_spec,
    period_data,
    rank_scope,
    rank_values,
    scope_label,
    scope_unit,
)
from core.metrics.values import METRICS, MetricKind, MetricSpec
from core.platform.directory import OutletDirectory, outlet_directory
from core.platform.errors import NotFound
from core.platform.periods import Period
from core.platform.permissions import Action, Actor, ensure_allowed
from db.models import DailyMetric, OrgLevel, OrgUnit


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
    spec = metric_spec(query.metric, session)
    unit = scope_unit(session, query)
    directory = outlet_directory(session)
    mask = directory.scope_mask(
        city_id=unit.city_id if unit.level != OrgLevel.PROVINCE else None, county_id=query.county_id
    )
    if not mask[directory.position_of(outlet_id)]:
        mask = directory.scope_mask(
            city_id=outlet.city_id
        )  # the board scope does not hold it: use its city
        unit = session.get(OrgUnit, outlet.city_id)
    # every builtin metric (the moves need them), and the chosen one from the registry
    keys = [*METRICS, *([] if spec.key in METRICS else [spec.key])]
    data = period_data(session, directory, query.period, keys)
    ranked = rank_values(directory, spec, mask, data)
    index = int(np.flatnonzero(directory.ids[ranked.positions] == outlet_id)[0])
    position = int(np.flatnonzero(ranked.order == index)[0])
    row = board_row(directory, ranked, index, position + 1, actor.outlet_id)
    next_name, gap_next = _gap_to_next(directory, ranked, position)
    top10 = int(ranked.values[ranked.order[min(9, len(ranked.order) - 1)]])
    province = rank_values(directory, spec, directory.scope_mask(), data)
    province_index = int(np.flatnonzero(directory.ids[province.positions] == outlet_id)[0])
    return OutletDetail(
        row=row,
        metric=spec,
        period=query.period,
        scope_label=scope_label(directory, unit),
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
    directory: OutletDirectory, ranked: Ranked, position: int
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
    ranked = rank_scope(
        session,
        directory,
        metric_spec(metric, session),
        period,
        directory.scope_mask(city_id=outlet.city_id),
    )
    index = int(np.flatnonzero(directory.ids[ranked.positions] == actor.outlet_id)[0])
    position = int(np.flatnonzero(ranked.order == index)[0])
    next_name, gap = _gap_to_next(directory, ranked, position)
    label = directory.unit_names.get(outlet.city_id, "")
    return Position(
        board_row(directory, ranked, index, position + 1, actor.outlet_id),
        len(ranked.positions),
        label,
        next_name,
        gap,
    )


def _moves(
    directory: OutletDirectory, mask: np.ndarray, outlet_id: int, data: PeriodData
) -> list[MetricMove]:
    moves = []
    for spec in METRICS.values():
        ranked = rank_values(directory, spec, mask, data)
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
    if not spec.builtin:
        return _registry_daily(session, outlet_id, spec, period)
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


def _registry_daily(
    session: Session, outlet_id: int, spec: MetricSpec, period: Period
) -> list[tuple[date, int]]:
    """A registry metric's daily values (days without a row: 0, or the stock carried)."""
    from core.metrics import series

    rows = series.daily_values(session, "outlet", spec.key, [outlet_id], period.start, period.end)
    horizon = series.latest_date(session, "outlet", spec.key) or period.start
    points, carried, day = [], 0, period.start
    while day <= min(period.end, horizon):
        carried = rows.get(day, carried if spec.kind is MetricKind.STOCK else 0)
        points.append((day, carried))
        day += timedelta(days=1)
    return points


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
        .where(RankSnapshot.metric == metric_spec(metric, session).key)
        .order_by(RankSnapshot.date.desc())
        .limit(days)
    ).all()
    history = []
    for day, province, city in reversed(rows):
        p, c = np.frombuffer(province, dtype="<i4"), np.frombuffer(city, dtype="<i4")
        if outlet_id < len(p) and p[outlet_id] > 0:
            history.append((day, int(p[outlet_id]), int(c[outlet_id])))
    return history
