"""The org tree (机构): lookups, scope-aware listings and keeping ancestor links right."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from core.clock import utcnow
from core.errors import NotFound
from core.permissions import Action, Actor, scope_filter
from db.models import OrgLevel, OrgUnit


@dataclass(frozen=True)
class OrgRead:
    id: int
    code: str
    name: str
    level: OrgLevel
    city_id: int | None
    county_id: int | None


def _read(unit: OrgUnit) -> OrgRead:
    return OrgRead(unit.id, unit.code, unit.name, unit.level, unit.city_id, unit.county_id)


def unit_by_code(session: Session, code: str) -> OrgUnit:
    unit = session.exec(select(OrgUnit).where(OrgUnit.code == code.strip())).first()
    if unit is None:
        raise NotFound(f"机构编码 {code} 不存在")
    return unit


def units_in_scope(
    session: Session, *, actor: Actor, action: Action, level: OrgLevel, city_id: int | None = None
) -> list[OrgRead]:
    """Units of one level that `actor` may see for `action`, ordered by code."""
    query = (
        select(OrgUnit)
        .where(OrgUnit.level == level, scope_filter(actor, action))
        .order_by(col(OrgUnit.code))
    )
    if city_id is not None:
        query = query.where(OrgUnit.city_id == city_id)
    return [_read(u) for u in session.exec(query)]


def cities(session: Session) -> list[OrgRead]:
    """All cities of the province (names are not confidential; numbers are scoped elsewhere)."""
    query = select(OrgUnit).where(OrgUnit.level == OrgLevel.CITY).order_by(col(OrgUnit.code))
    return [_read(u) for u in session.exec(query)]


def outlet_codes(session: Session) -> dict[str, tuple[int, int | None]]:
    """Every outlet code → (outlet id, city id): the lookup an import validates against."""
    rows = session.exec(
        select(OrgUnit.code, OrgUnit.id, OrgUnit.city_id).where(OrgUnit.level == OrgLevel.OUTLET)
    )
    return {code: (uid, city_id) for code, uid, city_id in rows}


def recompute_ancestors(session: Session) -> None:
    """Refresh the denormalised `city_id` / `county_id` of every unit after the tree changed.

    A city points at itself and a county at itself, so `city_id == X` selects a city with
    everything under it.
    """
    units = {u.id: u for u in session.exec(select(OrgUnit))}
    for unit in units.values():
        city_id = county_id = None
        node: OrgUnit | None = unit
        while node is not None:
            if node.level == OrgLevel.CITY:
                city_id = node.id
            elif node.level == OrgLevel.COUNTY:
                county_id = node.id
            node = units.get(node.parent_id) if node.parent_id else None
        if (unit.city_id, unit.county_id) != (city_id, county_id):
            unit.city_id, unit.county_id = city_id, county_id
            unit.updated_at = utcnow()  # caches of the tree (core/directory.py) notice this
            session.add(unit)
