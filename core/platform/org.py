"""The org tree (机构): lookups, scope-aware listings and keeping ancestor links right."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from core.platform.clock import utcnow
from core.platform.errors import NotFound
from core.platform.permissions import Action, Actor, scope_filter
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


@dataclass(frozen=True)
class CityMove:
    """An outlet that now belongs to another city than before a change of the tree."""

    outlet_id: int
    outlet_code: str
    old_city_id: int
    new_city_id: int


def recompute_ancestors(session: Session) -> list[CityMove]:
    """Refresh the denormalised `city_id` / `county_id` of every unit after the tree changed;
    returns the outlets that changed city (to be passed to `follow_city_moves`).

    A city points at itself and a county at itself, so `city_id == X` selects a city with
    everything under it.
    """
    units = {u.id: u for u in session.exec(select(OrgUnit))}
    moves = []
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
            if unit.level == OrgLevel.OUTLET and None not in (unit.city_id, city_id):
                if unit.city_id != city_id:
                    moves.append(CityMove(unit.id, unit.code, unit.city_id, city_id))
            unit.city_id, unit.county_id = city_id, county_id
            unit.updated_at = (
                utcnow()
            )  # caches of the tree (core/platform/directory.py) notice this
            session.add(unit)
    return moves


def follow_city_moves(session: Session, moves: list[CityMove]) -> list[dict[str, object]]:
    """What a city move means for the rows that record an outlet's city or tie it to a city.

    - Channel codes (`channel_code.city_id`) follow their outlet: the new city manages
      them and the old one no longer sees them. Their history (events, the campaign and
      merchant they were made for) stays as it was.
    - Staff and outlet managers follow by themselves (they record only the outlet).
    - A merchant stays its city's partner; its binding to an outlet that left the city is
      removed, as a binding may not cross cities.
    - Campaigns keep their design and plan versions (history); what they target is
      resolved against today's tree (`campaigns.target_outlets`), so a moved outlet gets
      nothing new from its old city's campaigns.
    Returns one record per moved outlet, for the audit log.
    """
    from db.models import ChannelCode, Merchant, MerchantOutlet

    cities = dict(
        session.execute(
            sa.select(OrgUnit.id, OrgUnit.code).where(OrgUnit.level == OrgLevel.CITY)
        ).all()
    )
    codes: dict[int, int] = {}
    unbound: dict[int, list[str]] = {}
    # A few statements per destination city, not per outlet: a reorganisation moves hundreds.
    for city_id, outlets in _by_new_city(moves):
        codes.update(
            session.execute(
                sa.select(ChannelCode.outlet_id, sa.func.count())
                .where(ChannelCode.outlet_id.in_(outlets))
                .group_by(ChannelCode.outlet_id)
            ).all()
        )
        session.execute(
            sa.update(ChannelCode)
            .where(ChannelCode.outlet_id.in_(outlets))
            .values(city_id=city_id, updated_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
        foreign = sa.select(Merchant.id).where(Merchant.city_id != city_id)
        for outlet_id, name in session.execute(
            sa.select(MerchantOutlet.outlet_id, Merchant.name)
            .join(Merchant, Merchant.id == MerchantOutlet.merchant_id)
            .where(MerchantOutlet.outlet_id.in_(outlets), Merchant.id.in_(foreign))
            .order_by(Merchant.name)
        ):
            unbound.setdefault(outlet_id, []).append(name)
        session.execute(
            sa.delete(MerchantOutlet).where(
                MerchantOutlet.outlet_id.in_(outlets), MerchantOutlet.merchant_id.in_(foreign)
            ),
            execution_options={"synchronize_session": False},
        )
    return [
        {
            "outlet": move.outlet_code,
            "from_city": cities.get(move.old_city_id, ""),
            "to_city": cities.get(move.new_city_id, ""),
            "codes_moved": codes.get(move.outlet_id, 0),
            "merchants_unbound": unbound.get(move.outlet_id, []),
        }
        for move in moves
    ]


def _by_new_city(moves: list[CityMove]) -> list[tuple[int, list[int]]]:
    """(destination city, up to 1000 of the outlets moving there): bounded IN lists."""
    grouped: dict[int, list[int]] = {}
    for move in moves:
        grouped.setdefault(move.new_city_id, []).append(move.outlet_id)
    return [
        (city_id, outlets[start : start + 1000])
        for city_id, outlets in grouped.items()
        for start in range(0, len(outlets), 1000)
    ]
