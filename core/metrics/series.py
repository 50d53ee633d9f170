"""Running-total snapshots of registry metrics stored long (`series_snapshot`).

One row per (level, metric, day that has values): `cum` is an int64 array indexed by slot
(the outlet id at outlet level, the staff stint id at staff level) holding the running sum
of a flow or the last value of a stock at the end of that day; `last` is an int32 array of
the last day (ordinal) the slot reported, 0 for never. The state at any day is the latest
snapshot on or before it, so a period's flow is `cum(end) - cum(start - 1)` and its stock
`cum(end)`: two reads whatever the range, the scheme of `snapshots` for the builtin six.

`refresh` recomputes the changed slots from their raw rows from the earliest changed day
on, patching each later snapshot, so re-importing an old day stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.metrics.kinds import MetricKind
from db.models import OutletMetricValue, SeriesSnapshot, StaffMetricValue

SNAPSHOT = SeriesSnapshot.__table__


@dataclass
class State:
    """Decoded arrays at the end of one day (mutable while an import patches them)."""

    day: date
    cum: np.ndarray  # int64 per slot
    last: np.ndarray  # int32 day ordinal per slot, 0 = never reported

    def padded(self, size: int) -> State:
        if size <= len(self.cum) and len(self.last) == len(self.cum):
            return self
        size = max(size, len(self.cum))
        cum, last = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int32)
        cum[: len(self.cum)], last[: len(self.last)] = self.cum, self.last
        return State(self.day, cum, last)


def empty(day: date, size: int) -> State:
    return State(day, np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int32))


def _decode(row: sa.Row) -> State:
    return State(
        row.date,
        np.frombuffer(row.cum, dtype="<i8").astype(np.int64),
        np.frombuffer(row.last, dtype="<i4").astype(np.int32),
    )


def _where(level: str, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(SNAPSHOT.c.level == level, SNAPSHOT.c.metric_key == key)


def state_at(
    session: Session, level: str, key: str, day: date, size: int, with_last: bool = True
) -> State:
    """The state at the end of `day` (zeros before the first snapshot), one query.
    `with_last=False` skips reading the last-report days (a flow's period start)."""
    last_column = SNAPSHOT.c.last if with_last else sa.literal(b"", sa.LargeBinary).label("last")
    row = session.execute(
        sa.select(SNAPSHOT.c.date, SNAPSHOT.c.cum, last_column)
        .where(_where(level, key), SNAPSHOT.c.date <= day)
        .order_by(SNAPSHOT.c.date.desc())
        .limit(1)
    ).first()
    if row is None:
        return empty(day, size)
    state = _decode(row).padded(size)
    return State(day, state.cum, state.last)


def period(
    session: Session, level: str, key: str, kind: MetricKind, start: date, end: date, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(value per slot over [start, end], last reported day ordinal per slot at `end`)."""
    at_end = state_at(session, level, key, end, size)
    if kind is MetricKind.STOCK:
        return at_end.cum, at_end.last
    before = state_at(session, level, key, start - timedelta(days=1), size, with_last=False)
    return at_end.cum - before.cum, at_end.last


def daily_values(
    session: Session, level: str, key: str, slots: list[int], start: date, end: date
) -> dict[date, int]:
    """Raw daily values summed over `slots` (a drill-down's trend), days with data only."""
    table, slot = _source(level)
    rows = session.execute(
        sa.select(table.c.date, sa.func.sum(table.c.value))
        .where(table.c.metric_key == key, slot.in_(slots), table.c.date.between(start, end))
        .group_by(table.c.date)
    ).all()
    return {d: int(v) for d, v in rows}


def _source(level: str) -> tuple[sa.Table, sa.Column]:
    if level == "staff":
        table = StaffMetricValue.__table__
        return table, table.c.stint_id
    table = OutletMetricValue.__table__
    return table, table.c.outlet_id


def _save(session: Session, level: str, key: str, state: State, exists: bool) -> None:
    values = {
        "size": len(state.cum),
        "cum": state.cum.astype("<i8").tobytes(),
        "last": state.last.astype("<i4").tobytes(),
    }
    if exists:
        session.execute(
            sa.update(SNAPSHOT)
            .where(_where(level, key), SNAPSHOT.c.date == state.day)
            .values(**values)
        )
    else:
        session.execute(
            sa.insert(SNAPSHOT).values(level=level, metric_key=key, date=state.day, **values)
        )


def _load(session: Session, level: str, key: str, day: date) -> State | None:
    row = session.execute(
        sa.select(SNAPSHOT.c.date, SNAPSHOT.c.cum, SNAPSHOT.c.last).where(
            _where(level, key), SNAPSHOT.c.date == day
        )
    ).first()
    return None if row is None else _decode(row)


def refresh(
    session: Session,
    level: str,
    key: str,
    kind: MetricKind,
    first_changed: dict[int, date],
    days: Iterable[date],
    size: int,
) -> int:
    """Bring one metric's snapshots in step after raw rows of some slots changed; returns
    the snapshots written. Visits the imported days and the existing snapshots from the
    earliest changed day on, never the calendar between them."""
    if not first_changed:
        return 0
    start = min(first_changed.values())
    existing = set(
        session.execute(
            sa.select(SNAPSHOT.c.date).where(_where(level, key), SNAPSHOT.c.date >= start)
        ).scalars()
    )
    visit = sorted(existing | {d for d in days if d >= start})
    slots = np.array(sorted(first_changed), dtype=np.int64)
    previous = state_at(session, level, key, start - timedelta(days=1), size)
    cum, last = previous.cum[slots].copy(), previous.last[slots].copy()
    position = np.full(size, -1, dtype=np.int64)
    position[slots] = np.arange(len(slots))
    few = slots.tolist() if len(slots) <= 500 else None
    written = 0
    for day in visit:
        ids, values = _day_rows(session, level, key, day, few)
        where = position[ids[ids < size]]
        mine = where >= 0
        index, vals = where[mine], values[ids < size][mine]
        if kind is MetricKind.FLOW:
            cum[index] += vals
        else:
            cum[index] = vals
        last[index] = day.toordinal()
        stored = _load(session, level, key, day) if day in existing else None
        current = (
            stored.padded(size)
            if stored is not None
            else State(day, previous.cum.copy(), previous.last.copy())
        )
        if stored is not None:
            current = State(day, current.cum.copy(), current.last.copy())
        changed = not (
            np.array_equal(current.cum[slots], cum) and np.array_equal(current.last[slots], last)
        )
        current.cum[slots], current.last[slots] = cum, last
        if changed or stored is None:
            _save(session, level, key, current, exists=stored is not None)
            written += 1
        previous = current
    return written


def _day_rows(
    session: Session, level: str, key: str, day: date, slots: list[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    table, slot = _source(level)
    query = sa.select(slot, table.c.value).where(table.c.metric_key == key, table.c.date == day)
    if slots is not None:
        query = query.where(slot.in_(slots))
    rows = session.execute(query).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    matrix = np.array([tuple(r) for r in rows], dtype=np.int64)
    return matrix[:, 0], matrix[:, 1]


def latest_date(session: Session, level: str, key: str | None = None) -> date | None:
    query = sa.select(sa.func.max(SNAPSHOT.c.date)).where(SNAPSHOT.c.level == level)
    if key is not None:
        query = query.where(SNAPSHOT.c.metric_key == key)
    return session.execute(query).scalar_one()


def write_dense(
    session: Session,
    level: str,
    key: str,
    dates: list[date],
    cum: np.ndarray,
    last: np.ndarray,
) -> None:
    """Bulk-write snapshots computed elsewhere (the demo seed, the benchmark): `cum` and
    `last` have shape (len(dates), size)."""
    for j, day in enumerate(dates):
        _save(session, level, key, State(day, cum[j], last[j]), exists=False)


def first_date(session: Session, level: str, key: str) -> date | None:
    return session.execute(
        sa.select(sa.func.min(SNAPSHOT.c.date)).where(_where(level, key))
    ).scalar_one()
