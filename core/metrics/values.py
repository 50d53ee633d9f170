"""Daily outlet metrics: what each metric means, and the period queries every summary and
board is built on.

Rules (DESIGN.md): flows are summed over a period; stocks take the value on the last date
≤ period end that has data; an outlet with no rows in a period has 0 for flows and its
last known stock. Snapshots of running totals (core/metrics/snapshots.py) make each of these one
or two array lookups per period, whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import snapshots
from core.metrics.kinds import METRICS, MetricKind, MetricSpec
from core.platform.directory import OutletDirectory
from db.models import DailyMetric

__all__ = ["METRICS", "MetricKind", "MetricSpec", "daily_series", "period_values", "totals"]

latest_date = snapshots.latest_date


def period_values(
    session: Session,
    directory: OutletDirectory,
    start: date,
    end: date,
    keys: list[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per outlet (indexed by outlet id): each metric over [start, end], by the rules above."""
    keys = keys or list(METRICS)
    extras = [k for k in keys if k not in METRICS]
    specs = [METRICS[k] for k in keys if k in METRICS]
    at_end = snapshots.state_at(session, end, directory.size, {s.snapshot_field for s in specs})
    flows = [s.snapshot_field for s in specs if s.kind is MetricKind.FLOW]
    before = (
        snapshots.state_at(session, start - timedelta(days=1), directory.size, flows)
        if flows
        else None
    )
    values = {}
    for spec in specs:
        current = at_end.arrays[spec.snapshot_field]
        values[spec.key] = (
            current - before.arrays[spec.snapshot_field]
            if spec.kind is MetricKind.FLOW
            else current
        )
    values["reported"] = at_end.arrays["reported"]
    if extras:
        values.update(_registry_values(session, directory, start, end, extras))
    return values


def _registry_values(
    session: Session, directory: OutletDirectory, start: date, end: date, keys: list[str]
) -> dict[str, np.ndarray]:
    """Non-builtin registry metrics: their own snapshots, indexed by outlet id like the rest."""
    from core.metrics import registry, series

    found = registry.all_specs(session)
    return {
        key: series.period(session, "outlet", key, found[key].kind, start, end, directory.size)[0]
        for key in keys
    }


@dataclass(frozen=True)
class Totals:
    """Sums over a set of outlets; money in fen."""

    values: dict[str, int]
    outlets_reporting: int

    def __getitem__(self, key: str) -> int:
        return self.values[key]


def totals(
    session: Session, directory: OutletDirectory, mask: np.ndarray, start: date, end: date
) -> Totals:
    """Totals of the six metrics over the outlets selected by `mask` (directory positions)."""
    ids = directory.ids[mask]
    values = period_values(session, directory, start, end)
    sums = {key: int(values[key][ids].sum()) for key in METRICS}
    return Totals(sums, int(values["reported"][ids].sum()))


@dataclass(frozen=True)
class DailyPoint:
    day: date
    new_friends: int
    conversions: int
    deposits_fen: int


def daily_series(
    session: Session, directory: OutletDirectory, mask: np.ndarray, start: date, end: date
) -> list[DailyPoint]:
    """Daily sums of the flow metrics over the selected outlets, for days with data."""
    horizon, first = snapshots.latest_date(session), snapshots.first_date(session)
    if horizon is None:
        return []
    ids = directory.ids[mask]
    fields = ["cum_new_friends", "cum_conversions", "cum_deposits_fen"]
    day, last = max(start, first), min(end, horizon)
    previous = snapshots.state_at(session, day - timedelta(days=1), directory.size, fields)
    loaded = snapshots.load_range(session, day, last, fields)  # one query
    points = []
    while day <= last:
        # a day without a snapshot had no rows: nothing changed since the previous one
        current = loaded[day].padded(directory.size) if day in loaded else previous
        delta = [int((current.arrays[f][ids] - previous.arrays[f][ids]).sum()) for f in fields]
        points.append(DailyPoint(day, *delta))
        previous, day = current, day + timedelta(days=1)
    return points


def reported_mask(session: Session, directory: OutletDirectory, day: date) -> np.ndarray:
    """Per directory position: the outlet sent a row for `day`."""
    reported = np.array(
        session.execute(sa.select(DailyMetric.outlet_id).where(DailyMetric.date == day))
        .scalars()
        .all(),
        dtype=np.int64,
    )
    return np.isin(directory.ids, reported)


def silent_outlets(
    session: Session, directory: OutletDirectory, mask: np.ndarray, day: date
) -> list[tuple[str, str]]:
    """(code, name) of the selected outlets that sent no row for `day`, new ones included
    (the data-quality check only counts outlets that had reported before)."""
    silent = mask & ~reported_mask(session, directory, day)
    return [(directory.codes[i], directory.names[i]) for i in np.flatnonzero(silent)]
