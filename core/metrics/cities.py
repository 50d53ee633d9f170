"""The city ranking (市州排名): cities by total and by average per outlet."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import snapshots
from core.metrics.rankings import metric_spec
from core.metrics.values import MetricSpec, period_values
from core.platform.directory import OutletDirectory, outlet_directory
from core.platform.periods import Period
from core.platform.permissions import Action, Actor, ensure_allowed
from db.models import OrgLevel, OrgUnit


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
    spec = metric_spec(metric, session)
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
