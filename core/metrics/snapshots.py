"""Running-total snapshots (`metric_snapshot`): storage and exact maintenance.

A snapshot holds, at the end of one day, every outlet's running sums of the flow metrics
and last known stock values, as arrays indexed by outlet id. Snapshots exist for the days
that have daily rows (a dense set, one per calendar day, is valid too): between two of them
nothing changes, so the state at any day is the latest snapshot on or before it. Flows over
[start, end] are `state(end) - state(start - 1)`; stocks are `state(end)`. After an import,
the changed outlets are recomputed from their raw daily rows from the earliest changed day
on: each imported day without a snapshot gets one, and each later snapshot is patched, so
re-importing an old day stays exact and costs the snapshots that exist, not the calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from db.models import DailyMetric, MetricSnapshot

FLOW_FIELDS = ("cum_new_friends", "cum_conversions", "cum_deposits_fen")
STOCK_FIELDS = ("total_friends", "groups", "group_members")
VALUE_FIELDS = FLOW_FIELDS + STOCK_FIELDS
# daily_metric columns feeding each snapshot field
_DAILY_SOURCE = {
    "cum_new_friends": "new_friends",
    "cum_conversions": "conversions",
    "cum_deposits_fen": "deposits_fen",
    "total_friends": "total_friends",
    "groups": "groups",
    "group_members": "group_members",
}


@dataclass
class Snapshot:
    """Decoded arrays of one day (mutable while an import patches it)."""

    day: date
    arrays: dict[str, np.ndarray]  # VALUE_FIELDS → int64, "reported" → bool

    @property
    def size(self) -> int:
        return len(self.arrays["reported"])

    def padded(self, size: int) -> Snapshot:
        """The same snapshot with room for outlet ids below `size` (new outlets are zero)."""
        if size <= self.size:
            return self
        grown = {}
        for name, array in self.arrays.items():
            bigger = np.zeros(size, dtype=array.dtype)
            bigger[: len(array)] = array
            grown[name] = bigger
        return Snapshot(self.day, grown)

    def copy(self, day: date) -> Snapshot:
        return Snapshot(day, {name: array.copy() for name, array in self.arrays.items()})


def empty(day: date, size: int) -> Snapshot:
    arrays = {name: np.zeros(size, dtype=np.int64) for name in VALUE_FIELDS}
    arrays["reported"] = np.zeros(size, dtype=bool)
    return Snapshot(day, arrays)


def _encode(snapshot: Snapshot) -> dict[str, object]:
    values: dict[str, object] = {
        name: snapshot.arrays[name].astype("<i8").tobytes() for name in VALUE_FIELDS
    }
    values["reported"] = snapshot.arrays["reported"].astype(np.uint8).tobytes()
    return {"date": snapshot.day, "size": snapshot.size, **values}


def latest_date(session: Session) -> date | None:
    """The newest day with a snapshot: the horizon of all period queries."""
    return session.execute(sa.select(sa.func.max(MetricSnapshot.date))).scalar_one()


def first_date(session: Session) -> date | None:
    return session.execute(sa.select(sa.func.min(MetricSnapshot.date))).scalar_one()


def load(session: Session, day: date, fields: Iterable[str] | None = None) -> Snapshot | None:
    """The snapshot stored for exactly `day`, or None when there is none."""
    return load_range(session, day, day, fields).get(day)


def load_range(
    session: Session, start: date, end: date, fields: Iterable[str] | None = None
) -> dict[date, Snapshot]:
    """The snapshots stored for days in [start, end], in one query."""
    return _select(session, fields, MetricSnapshot.__table__.c.date.between(start, end))


def _select(
    session: Session,
    fields: Iterable[str] | None,
    where: sa.ColumnElement[bool],
    latest_only: bool = False,
) -> dict[date, Snapshot]:
    wanted = list(fields) if fields is not None else [*VALUE_FIELDS]
    table = MetricSnapshot.__table__
    query = sa.select(table.c.date, table.c.reported, *(table.c[f] for f in wanted)).where(where)
    if latest_only:
        query = query.order_by(table.c.date.desc()).limit(1)
    return {row.date: _decode(row, wanted) for row in session.execute(query)}


def _decode(row: sa.Row, wanted: list[str]) -> Snapshot:
    arrays = {
        name: np.frombuffer(row._mapping[name], dtype="<i8").astype(np.int64) for name in wanted
    }
    arrays["reported"] = np.frombuffer(row.reported, dtype=np.uint8).astype(bool)
    return Snapshot(row.date, arrays)


def state_at(
    session: Session, day: date, size: int, fields: Iterable[str] | None = None
) -> Snapshot:
    """Running totals at the end of `day`: the latest snapshot on or before it (one query).
    Before the first snapshot everything is zero; after the horizon its values hold."""
    found = _select(session, fields, MetricSnapshot.__table__.c.date <= day, latest_only=True)
    if not found:
        return empty(day, size)
    (snapshot,) = found.values()
    return Snapshot(day, snapshot.padded(size).arrays)


def _save(session: Session, snapshot: Snapshot, exists: bool) -> None:
    table = MetricSnapshot.__table__
    values = _encode(snapshot)
    if exists:
        session.execute(sa.update(table).where(table.c.date == snapshot.day).values(**values))
    else:
        session.execute(sa.insert(table).values(**values))


def refresh(
    session: Session, first_changed: dict[int, date], days: Iterable[date], size: int
) -> int:
    """Bring the snapshots in step after daily rows of some outlets changed; returns the
    number of snapshots written.

    `first_changed`: outlet id → its earliest changed date; `days`: the dates that received
    rows; `size`: room for every outlet id (max id + 1). Visits each of `days` and each
    existing snapshot from the earliest changed date on, never the calendar days between
    them, and rewrites a snapshot only when its values change. Works one snapshot at a
    time, so memory stays at a few arrays of `size` whatever the number of days.
    """
    if not first_changed:
        return 0
    start = min(first_changed.values())
    existing = _existing_dates(session, start)
    visit = sorted(existing | {day for day in days if day >= start})
    outlets = np.array(sorted(first_changed), dtype=np.int64)
    previous = state_at(session, start - timedelta(days=1), size)
    running = _Running(outlets, previous, size)
    few = outlets if len(outlets) <= 500 else None
    written = 0
    for day in visit:
        running.apply(*_daily_rows(session, day, few))
        stored = load(session, day) if day in existing else None
        # A day without a snapshot had no rows before this import: every row on it belongs
        # to a changed outlet, so the others carry over from the previous snapshot.
        current = stored.padded(size) if stored is not None else previous.copy(day)
        if running.patch(current) or stored is None:
            _save(session, current, exists=stored is not None)
            written += 1
        previous = current
    return written


class _Running:
    """Running totals of the changed outlets, advanced one day of raw rows at a time."""

    def __init__(self, outlets: np.ndarray, base: Snapshot, size: int) -> None:
        self.outlets = outlets
        self.position = np.full(size, -1, dtype=np.int64)
        self.position[outlets] = np.arange(len(outlets))
        self.values = {
            name: base.arrays[name][outlets].copy() for name in (*VALUE_FIELDS, "reported")
        }

    def apply(self, ids: np.ndarray, values: dict[str, np.ndarray]) -> None:
        if len(ids) == 0:
            return
        inside = ids < len(self.position)
        ids = ids[inside]
        where = self.position[ids]
        mine = where >= 0
        index = where[mine]
        for name in FLOW_FIELDS:
            self.values[name][index] += values[name][inside][mine]
        for name in STOCK_FIELDS:
            self.values[name][index] = values[name][inside][mine]
        self.values["reported"][index] = True

    def patch(self, snapshot: Snapshot) -> bool:
        """Write the changed outlets' values into `snapshot`; False when it already held them."""
        changed = False
        for name, vector in self.values.items():
            target = snapshot.arrays[name]
            if not np.array_equal(target[self.outlets], vector):
                target[self.outlets] = vector
                changed = True
        return changed


def _daily_rows(
    session: Session, day: date, outlets: np.ndarray | None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Raw rows of one day as arrays (all outlets, or only `outlets` when few)."""
    daily = DailyMetric.__table__
    query = sa.select(daily.c.outlet_id, *(daily.c[_DAILY_SOURCE[n]] for n in VALUE_FIELDS)).where(
        daily.c.date == day
    )
    if outlets is not None:
        query = query.where(daily.c.outlet_id.in_(outlets.tolist()))
    rows = session.execute(query).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), {}
    matrix = np.array(
        [tuple(row) for row in rows], dtype=np.int64
    )  # plain tuples: numpy is slow on Rows
    return matrix[:, 0], {name: matrix[:, i + 1] for i, name in enumerate(VALUE_FIELDS)}


def _existing_dates(session: Session, start: date) -> set[date]:
    table = MetricSnapshot.__table__
    return set(session.execute(sa.select(table.c.date).where(table.c.date >= start)).scalars())


def rebuild_all(session: Session, size: int) -> int:
    """Recompute every snapshot from the daily rows (after a migration or a repair)."""
    session.execute(sa.delete(MetricSnapshot.__table__))
    daily = DailyMetric.__table__
    firsts = dict(
        session.execute(
            sa.select(daily.c.outlet_id, sa.func.min(daily.c.date)).group_by(daily.c.outlet_id)
        ).all()
    )
    if not firsts:
        return 0
    days = session.execute(sa.select(daily.c.date).distinct()).scalars().all()
    return refresh(session, firsts, days, size)


def write_arrays(
    session: Session,
    dates: list[date],
    arrays: dict[str, np.ndarray],
    size: int,
    outlet_ids: np.ndarray,
) -> None:
    """Bulk-write snapshots computed elsewhere (the demo seed, the benchmark).

    `arrays[name]` has shape (len(outlet_ids), len(dates)) and holds running totals;
    outlets not listed are zero.
    """
    for j, day in enumerate(dates):
        snapshot = empty(day, size)
        for name in (*VALUE_FIELDS, "reported"):
            snapshot.arrays[name][outlet_ids] = arrays[name][:, j]
        _save(session, snapshot, exists=False)
