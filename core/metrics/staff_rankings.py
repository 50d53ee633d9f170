"""Staff boards (员工排行): the leaderboard rules applied to staff members, for an outlet
(the manager's own staff), a county, a city or the province. One engine for the page and
the CLI.

Values are kept per stint (staff member × outlet), so a board counts what each staff member
earned at the outlets of its scope: a transfer mid-period shows on the old outlet's board
with what was earned there and on the new one with the rest; a leaver stays on the boards
of periods they reported in. Who is ranked: every staff member who reported in the scope
during the period, plus the active staff whose current outlet is in scope (0 for flows,
their last stock there). Flows are summed over the scope's stints; a stock is the value of
the stint that reported last. Ranks are competition style (1, 2, 2, 4), ties listed by
staff code; rank change compares with the previous period of the same length.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import series
from core.metrics.kinds import MetricKind, MetricSpec
from core.metrics.registry import Level, spec_for, specs
from core.metrics.staff_directory import StaffDirectory, staff_directory
from core.metrics.staff_targets import Target, targets_for
from core.metrics.values import period_values
from core.platform.directory import OutletDirectory, outlet_directory
from core.platform.errors import NotFound
from core.platform.periods import Period
from core.platform.permissions import Action, Actor, Scope, ensure_allowed, scope_of
from db.models import ChannelEvent, EventType, OrgLevel, OrgUnit, Staff, StaffMetricValue

SHANGHAI_OFFSET = timedelta(hours=8)


@dataclass(frozen=True)
class StaffBoardQuery:
    metric: str
    period: Period
    city_id: int | None = None
    county_id: int | None = None
    outlet_id: int | None = None
    top: int = 100


@dataclass(frozen=True)
class StaffRow:
    position: int
    rank: int
    staff_id: int
    code: str
    name: str
    outlet_id: int
    outlet_code: str
    outlet_name: str
    value: int
    previous_rank: int | None
    reported: bool  # reported in this scope during the period
    active: bool  # still employed (False: 离职)
    is_mine: bool = False  # at the actor's own outlet
    target: Target | None = None
    behind: bool = False  # completion below the time elapsed in the target period
    code_friends: int = 0  # friends added through channel codes in the period (not mixed in)

    @property
    def completion(self) -> Fraction | None:
        return (
            None
            if self.target is None or not self.target.value
            else Fraction(self.value, self.target.value)
        )

    @property
    def change(self) -> int | None:
        return None if self.previous_rank is None else self.previous_rank - self.rank


@dataclass(frozen=True)
class StaffBoard:
    metric: MetricSpec
    period: Period
    previous: Period
    scope_label: str
    staff_count: int
    rows: list[StaffRow]
    mine: list[StaffRow]  # the actor's outlet's staff below the top N, pinned
    data_until: date | None
    total: int
    behind: list[StaffRow] = field(default_factory=list)  # behind target, furthest first


class _Ranks:
    """Competition ranks of a value vector without sorting its indices: rank = 1 + how
    many values are strictly greater (one sort of the values, a search per lookup)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.ascending = np.sort(values)

    def rank(self, value: int) -> int:
        return len(self.ascending) - int(np.searchsorted(self.ascending, value, "right")) + 1

    def place(self, index: int) -> int:
        """Display position: ties are listed in directory (staff code) order."""
        value = self.values[index]
        return self.rank(value) + int(np.count_nonzero(self.values[:index] == value))

    def top(self, count: int) -> np.ndarray:
        """Indices of the first `count` in display order (descending, ties by code)."""
        n = len(self.values)
        if n > count:
            kth = self.ascending[n - count]  # the count-th largest value
            candidates = np.flatnonzero(self.values >= kth)
        else:
            candidates = np.arange(n)
        order = candidates[np.lexsort((candidates, -self.values[candidates]))]
        return order[:count]


@dataclass
class _Ranked:
    positions: np.ndarray  # staff directory positions ranked (ascending = code order)
    values: np.ndarray
    ranks: _Ranks
    previous: _Ranks | None  # None: nothing to compare with
    previous_reported: np.ndarray | None
    reported: np.ndarray
    outlets: np.ndarray  # the outlet shown per ranked staff member

    def previous_rank(self, index: int) -> int | None:
        if self.previous is None or not self.previous_reported[index]:
            return None
        return self.previous.rank(self.previous.values[index])


def _scope_unit(session: Session, query: StaffBoardQuery) -> OrgUnit:
    wanted = (
        (query.outlet_id, OrgLevel.OUTLET, "所选网点不存在"),
        (query.county_id, OrgLevel.COUNTY, "所选区县不存在"),
        (query.city_id, OrgLevel.CITY, "所选城市不存在"),
    )
    for unit_id, level, missing in wanted:
        if unit_id is not None:
            unit = session.get(OrgUnit, unit_id)
            if unit is None or unit.level != level:
                raise NotFound(missing)
            return unit
    unit = (
        session.execute(sa.select(OrgUnit).where(OrgUnit.level == OrgLevel.PROVINCE))
        .scalars()
        .first()
    )
    if unit is None:
        raise NotFound("还没有机构数据")
    return unit


def _outlets_in(directory: OutletDirectory, unit: OrgUnit) -> np.ndarray:
    """Boolean per outlet id: the outlet is inside `unit`."""
    inside = np.zeros(directory.size, dtype=bool)
    if unit.level == OrgLevel.OUTLET:
        inside[unit.id] = True
    elif unit.level == OrgLevel.COUNTY:
        inside[directory.ids[directory.county_ids == unit.id]] = True
    elif unit.level == OrgLevel.CITY:
        inside[directory.ids[directory.city_ids == unit.id]] = True
    else:
        inside[directory.ids] = True
    return inside


def _inside(outlets_in: np.ndarray, outlet_ids: np.ndarray) -> np.ndarray:
    ok = outlet_ids < len(outlets_in)
    result = np.zeros(len(outlet_ids), dtype=bool)
    result[ok] = outlets_in[outlet_ids[ok]]
    return result


def _per_staff(
    sd: StaffDirectory,
    spec: MetricSpec,
    stints: np.ndarray,
    values: np.ndarray,
    last: np.ndarray,
    start: date,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, reported in the period, outlet of the latest stint) per staff position, over
    the given in-scope stints. Most staff have one stint: they are assigned directly; the
    few with several (transfers) are combined: flows summed, the stock of the stint that
    reported last."""
    n = len(sd.ids)
    value = np.zeros(n, dtype=np.int64)
    latest = np.zeros(n, dtype=np.int64)
    outlet = np.zeros(n, dtype=np.int64)
    shared = sd.stint_shared[stints]
    single = stints[~shared]
    who = sd.stint_staff[single]
    value[who], latest[who], outlet[who] = values[single], last[single], sd.stint_outlet[single]
    several = stints[shared]
    if len(several):
        owner = sd.stint_staff[several]
        order = np.lexsort((last[several], owner))  # by staff, then by last report
        tail = np.ones(len(order), dtype=bool)
        tail[:-1] = owner[order][1:] != owner[order][:-1]
        chosen = several[order[tail]]
        chosen_owner = sd.stint_staff[chosen]
        latest[chosen_owner] = last[chosen]
        outlet[chosen_owner] = sd.stint_outlet[chosen]
        if spec.kind is MetricKind.FLOW:
            np.add.at(value, owner, values[several])
        else:
            value[chosen_owner] = values[chosen]
    return value, latest >= start.toordinal(), outlet


def _rank(
    session: Session,
    sd: StaffDirectory,
    od: OutletDirectory,
    spec: MetricSpec,
    period: Period,
    unit: OrgUnit,
) -> _Ranked:
    outlets_in = _outlets_in(od, unit)
    size = sd.stint_size
    if unit.level == OrgLevel.PROVINCE:
        stints = np.flatnonzero(sd.stint_staff >= 0)
    else:
        stints = np.flatnonzero((sd.stint_staff >= 0) & _inside(outlets_in, sd.stint_outlet))
    values, last = series.period(
        session, "staff", spec.key, spec.kind, period.start, period.end, size
    )
    value, reported, outlet = _per_staff(sd, spec, stints, values, last, period.start)
    current_in = sd.active & _inside(outlets_in, sd.outlets)
    positions = np.flatnonzero(reported | current_in)
    shown = np.where(current_in, sd.outlets, outlet)[positions]
    previous = previous_reported = None
    first = series.first_date(session, "staff", spec.key)
    prev = period.previous()
    if first is not None and prev.end >= first:
        pv, pl = series.period(session, "staff", spec.key, spec.kind, prev.start, prev.end, size)
        pvalue, preported, _ = _per_staff(sd, spec, stints, pv, pl, prev.start)
        previous, previous_reported = _Ranks(pvalue[positions]), preported[positions]
    return _Ranked(
        positions,
        value[positions],
        _Ranks(value[positions]),
        previous,
        previous_reported,
        reported[positions],
        shown,
    )


def _code_friends(session: Session, staff_ids: list[int], period: Period) -> dict[int, int]:
    """Friends added through channel codes per staff member in the period (Shanghai days)."""
    if not staff_ids:
        return {}
    start = datetime.combine(period.start, time(), tzinfo=UTC) - SHANGHAI_OFFSET
    end = datetime.combine(period.end + timedelta(days=1), time(), tzinfo=UTC) - SHANGHAI_OFFSET
    rows = session.execute(
        sa.select(ChannelEvent.staff_id, sa.func.count())
        .where(
            ChannelEvent.staff_id.in_(staff_ids),
            ChannelEvent.event_type == EventType.ADD_FRIEND,
            ChannelEvent.at >= start,
            ChannelEvent.at < end,
        )
        .group_by(ChannelEvent.staff_id)
    ).all()
    return {sid: int(n) for sid, n in rows}


def _row(
    sd: StaffDirectory,
    od: OutletDirectory,
    ranked: _Ranked,
    index: int,
    position: int,
    mine: int | None,
) -> StaffRow:
    at = int(ranked.positions[index])
    outlet_id = int(ranked.outlets[index])
    where = _outlet_position(od, outlet_id)
    return StaffRow(
        position=position,
        rank=ranked.ranks.rank(int(ranked.values[index])),
        staff_id=int(sd.ids[at]),
        code=sd.codes[at],
        name=sd.names[at],
        outlet_id=outlet_id,
        outlet_code=od.codes[where] if where is not None else "",
        outlet_name=od.names[where] if where is not None else "",
        value=int(ranked.values[index]),
        previous_rank=ranked.previous_rank(index),
        reported=bool(ranked.reported[index]),
        active=bool(sd.active[at]),
        is_mine=mine is not None and outlet_id == mine,
    )


def _outlet_position(od: OutletDirectory, outlet_id: int) -> int | None:
    """Directory position of an outlet without scanning (code_order is indexed by id)."""
    if 0 < outlet_id < od.size:
        at = int(od.code_order[outlet_id])
        if at < len(od.ids) and od.ids[at] == outlet_id:
            return at
    return None


def _decorate(
    session: Session, rows: list[StaffRow], spec: MetricSpec, period: Period, until: date | None
) -> list[StaffRow]:
    """Targets, the behind-target flag and the code-added friends of the rows shown."""
    ids = [r.staff_id for r in rows]
    targets = targets_for(session, ids, spec.key, period.start, period.end)
    friends = _code_friends(session, ids, period)
    day = min(period.end, until) if until else period.end
    return [
        replace(
            r,
            target=targets.get(r.staff_id),
            behind=r.staff_id in targets and targets[r.staff_id].behind(r.value, day),
            code_friends=friends.get(r.staff_id, 0),
        )
        for r in rows
    ]


def staff_leaderboard(session: Session, *, actor: Actor, query: StaffBoardQuery) -> StaffBoard:
    """The top N staff of a scope for one metric and period, plus the actor's outlet's staff."""
    spec = spec_for(session, query.metric, Level.STAFF)
    unit = _scope_unit(session, query)
    ensure_allowed(actor, Action.VIEW_STAFF_METRICS, unit)
    sd, od = staff_directory(session), outlet_directory(session)
    ranked = _rank(session, sd, od, spec, query.period, unit)
    mine_outlet = actor.outlet_id
    until = series.latest_date(session, "staff", spec.key)
    top = ranked.ranks.top(query.top)
    rows = [_row(sd, od, ranked, int(i), n + 1, mine_outlet) for n, i in enumerate(top)]
    pinned = []
    if mine_outlet is not None:
        shown = set(top.tolist())
        mine = [int(i) for i in np.flatnonzero(ranked.outlets == mine_outlet) if i not in shown]
        places = sorted((ranked.ranks.place(i), i) for i in mine[:200])
        pinned = [_row(sd, od, ranked, i, place, mine_outlet) for place, i in places[:50]]
    rows, pinned = (
        _decorate(session, rows, spec, query.period, until),
        _decorate(session, pinned, spec, query.period, until),
    )
    behind = sorted(
        (r for r in [*rows, *pinned] if r.behind),
        key=lambda r: (r.completion or 0, r.code),
    )
    return StaffBoard(
        metric=spec,
        period=query.period,
        previous=query.period.previous(),
        scope_label=_label(od, unit),
        staff_count=len(ranked.positions),
        rows=rows,
        mine=pinned,
        data_until=until,
        total=int(ranked.values.sum()),
        behind=behind,
    )


def _label(od: OutletDirectory, unit: OrgUnit) -> str:
    if unit.level == OrgLevel.COUNTY:
        return f"{od.unit_names.get(unit.city_id, '')} · {unit.name}"
    if unit.level == OrgLevel.OUTLET:
        return f"{od.unit_names.get(unit.city_id, '')} · {unit.name}"
    return unit.name


# --- one staff member ---------------------------------------------------------------------


@dataclass(frozen=True)
class StaffDay:
    day: date
    value: int
    outlet_code: str


@dataclass(frozen=True)
class StaffDetail:
    staff_id: int
    code: str
    name: str
    outlet_name: str
    active: bool
    metric: MetricSpec
    period: Period
    total: int
    daily: list[StaffDay]  # days with data, with the outlet the value was earned at
    code_friends: int


def staff_detail(
    session: Session, *, actor: Actor, staff_id: int, metric: str, period: Period
) -> StaffDetail:
    """Drill-down of one staff member: the daily trend of a metric over the period, every
    outlet they were at included (each day says where)."""
    spec = spec_for(session, metric, Level.STAFF)
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("员工不存在")
    ensure_allowed(actor, Action.VIEW_STAFF_METRICS, session.get(OrgUnit, staff.outlet_id))
    sd, od = staff_directory(session), outlet_directory(session)
    table = StaffMetricValue.__table__
    rows = session.execute(
        sa.select(table.c.date, table.c.value, table.c.stint_id)
        .where(
            table.c.metric_key == spec.key,
            table.c.stint_id.in_(sd.stints_of(staff_id).tolist() or [-1]),
            table.c.date.between(period.start, period.end),
        )
        .order_by(table.c.date)
    ).all()
    daily = []
    for day, value, stint in rows:
        where = od.position_of(int(sd.stint_outlet[stint]))
        daily.append(StaffDay(day, int(value), od.codes[where] if where is not None else ""))
    if spec.kind is MetricKind.FLOW:
        total = sum(d.value for d in daily)
    else:
        total = daily[-1].value if daily else 0
    outlet = session.get(OrgUnit, staff.outlet_id)
    return StaffDetail(
        staff_id=staff.id,
        code=staff.wecom_userid,
        name=staff.name,
        outlet_name=outlet.name if outlet else "",
        active=staff.active,
        metric=spec,
        period=period,
        total=total,
        daily=daily,
        code_friends=_code_friends(session, [staff.id], period).get(staff.id, 0),
    )


# --- what a user may choose, and the scope's figures ------------------------------------------


@dataclass(frozen=True)
class StaffScopes:
    """The staff board scopes offered to a user."""

    province: bool
    cities: list[tuple[int, str]]
    counties: dict[int, list[tuple[int, str]]]  # city id → counties
    outlets: dict[int, list[tuple[int, str]]]  # county id → outlets
    own_outlet: int | None  # an outlet manager's only scope


def staff_scopes(session: Session, *, actor: Actor) -> StaffScopes:
    ensure_allowed(actor, Action.VIEW_STAFF_METRICS)
    scope = scope_of(actor, Action.VIEW_STAFF_METRICS)
    od = outlet_directory(session)
    mask = od.mask_for(actor, Action.VIEW_STAFF_METRICS)
    cities = sorted({int(c) for c in od.city_ids[mask]})
    counties: dict[int, list[tuple[int, str]]] = {}
    outlets: dict[int, list[tuple[int, str]]] = {}
    for at in np.flatnonzero(mask):
        county, city = int(od.county_ids[at]), int(od.city_ids[at])
        if (county, od.unit_names.get(county, "")) not in counties.get(city, []):
            counties.setdefault(city, []).append((county, od.unit_names.get(county, "")))
        outlets.setdefault(county, []).append((int(od.ids[at]), od.names[at]))
    return StaffScopes(
        province=scope is Scope.PROVINCE,
        cities=[(c, od.unit_names.get(c, "")) for c in cities],
        counties=counties,
        outlets=outlets,
        own_outlet=actor.outlet_id if scope is Scope.OUTLET else None,
    )


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: int
    is_money: bool


def scope_figures(
    session: Session, *, actor: Actor, query: StaffBoardQuery, keys: list[str] | None = None
) -> list[Figure]:
    """The scope's outlet-level totals of the registry metrics beyond the builtin six (the
    conversion breakdown: 快捷支付绑卡, 手机银行开户, Ⅱ类户, 价值存款 …) over the period."""
    unit = _scope_unit(session, query)
    ensure_allowed(actor, Action.VIEW_STAFF_METRICS, unit)
    found = {k: s for k, s in specs(session, Level.OUTLET).items() if not s.builtin}
    wanted = [k for k in (keys or list(found)) if k in found]
    if not wanted:
        return []
    od = outlet_directory(session)
    inside = _outlets_in(od, unit)
    values = period_values(session, od, query.period.start, query.period.end, wanted)
    return [
        Figure(k, found[k].label, int(values[k][inside[: len(values[k])]].sum()), found[k].is_money)
        for k in wanted
    ]
