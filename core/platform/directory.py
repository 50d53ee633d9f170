"""The outlet directory: every outlet's id, code, name, county and city as arrays, cached
per process and refreshed when the org tree changes. Boards, totals and rankings use it
to turn snapshot arrays (indexed by outlet id) into scoped, named rows without SQL joins."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.platform.permissions import Action, Actor, Scope, scope_of
from db.models import OrgLevel, OrgUnit


@dataclass(frozen=True)
class OutletDirectory:
    ids: np.ndarray  # outlet ids, ordered by code
    codes: list[str]
    names: list[str]
    city_ids: np.ndarray
    county_ids: np.ndarray
    size: int  # max org id + 1: the length snapshot arrays are padded to
    code_order: np.ndarray  # indexed by outlet id: position by code (ties are listed by code)
    unit_names: dict[int, str]  # every city and county id → name

    def positions(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Directory positions of the outlets selected by a boolean mask (all when None)."""
        return np.arange(len(self.ids)) if mask is None else np.flatnonzero(mask)

    def scope_mask(self, city_id: int | None = None, county_id: int | None = None) -> np.ndarray:
        mask = np.ones(len(self.ids), dtype=bool)
        if city_id is not None:
            mask &= self.city_ids == city_id
        if county_id is not None:
            mask &= self.county_ids == county_id
        return mask

    def mask_for(self, actor: Actor, action: Action) -> np.ndarray:
        """Outlets `actor` may see for `action`: the array form of permissions.scope_filter."""
        scope = scope_of(actor, action)
        if scope is None:
            return np.zeros(len(self.ids), dtype=bool)
        if scope is Scope.CITY:
            return self.city_ids == (actor.city_id or -1)
        if scope is Scope.OUTLET:
            return self.ids == (actor.outlet_id or -1)
        return np.ones(len(self.ids), dtype=bool)

    def position_of(self, outlet_id: int) -> int | None:
        found = np.flatnonzero(self.ids == outlet_id)
        return int(found[0]) if len(found) else None


_lock = threading.Lock()
_cache: dict[str, tuple[tuple, OutletDirectory]] = {}


def _version(session: Session) -> tuple:
    # Cheap enough to ask on every board: count and last change of the whole tree.
    return tuple(
        session.execute(
            sa.select(sa.func.count(), sa.func.max(OrgUnit.updated_at), sa.func.max(OrgUnit.id))
        ).one()
    )


def outlet_directory(session: Session) -> OutletDirectory:
    """The directory for this database, rebuilt only when the org tree changed."""
    key = str(session.get_bind().url)
    version = _version(session)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
    directory = _load(session, int(version[2] or 0) + 1)
    with _lock:
        _cache[key] = (version, directory)
    return directory


def _load(session: Session, size: int) -> OutletDirectory:
    rows = session.execute(
        sa.select(OrgUnit.id, OrgUnit.code, OrgUnit.name, OrgUnit.city_id, OrgUnit.county_id)
        .where(OrgUnit.level == OrgLevel.OUTLET)
        .order_by(OrgUnit.code)
    ).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    code_order = np.zeros(size, dtype=np.int64)
    code_order[ids] = np.arange(len(ids))
    units = session.execute(
        sa.select(OrgUnit.id, OrgUnit.name).where(
            OrgUnit.level.in_([OrgLevel.CITY, OrgLevel.COUNTY])
        )
    ).all()
    return OutletDirectory(
        ids=ids,
        codes=[r.code for r in rows],
        names=[r.name for r in rows],
        city_ids=np.array([r.city_id or 0 for r in rows], dtype=np.int64),
        county_ids=np.array([r.county_id or 0 for r in rows], dtype=np.int64),
        size=size,
        code_order=code_order,
        unit_names={uid: name for uid, name in units},
    )
