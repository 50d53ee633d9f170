"""The staff directory: every staff member and every stint (staff × outlet) as arrays,
cached per process and rebuilt when staff or stints change. Staff boards use it to turn
series arrays (indexed by stint id) into scoped, named rows without SQL joins."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from db.models import Staff, StaffStint


@dataclass(frozen=True)
class StaffDirectory:
    ids: np.ndarray  # staff ids, ordered by code (position = tie-break order)
    codes: list[str]
    names: list[str]
    outlets: np.ndarray  # current outlet id per position
    active: np.ndarray  # bool per position
    position: np.ndarray  # indexed by staff id → position, -1 when none
    stint_staff: np.ndarray  # indexed by stint id → staff position, -1 when none
    stint_outlet: np.ndarray  # indexed by stint id → outlet id (0 when none)
    stint_shared: np.ndarray  # indexed by stint id → its staff member has other stints

    @property
    def stint_size(self) -> int:
        return len(self.stint_staff)

    def stints_of(self, staff_id: int) -> np.ndarray:
        at = self.position[staff_id] if staff_id < len(self.position) else -1
        return np.flatnonzero(self.stint_staff == at) if at >= 0 else np.zeros(0, dtype=np.int64)


_lock = threading.Lock()
_cache: dict[str, tuple[tuple, StaffDirectory]] = {}


def _version(session: Session) -> tuple:
    # Index lookups only (a board must not read every staff row): staff are never deleted,
    # a new one raises max(id), and a transfer or a departure sets updated_at; stints are
    # only ever added.
    return tuple(
        session.execute(
            sa.select(
                sa.select(sa.func.max(Staff.id)).scalar_subquery(),
                sa.select(sa.func.max(Staff.updated_at)).scalar_subquery(),
                sa.select(sa.func.max(StaffStint.id)).scalar_subquery(),
            )
        ).one()
    )


def staff_directory(session: Session) -> StaffDirectory:
    """The directory for this database, rebuilt only when staff or stints changed."""
    key = str(session.get_bind().url)
    version = _version(session)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
    directory = _load(session)
    with _lock:
        _cache[key] = (version, directory)
    return directory


def _load(session: Session) -> StaffDirectory:
    rows = session.execute(
        sa.select(Staff.id, Staff.wecom_userid, Staff.name, Staff.outlet_id, Staff.active).order_by(
            Staff.wecom_userid
        )
    ).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    position = np.full(int(ids.max()) + 1 if len(ids) else 1, -1, dtype=np.int64)
    position[ids] = np.arange(len(ids))
    stints = np.array(
        session.execute(sa.select(StaffStint.id, StaffStint.staff_id, StaffStint.outlet_id)).all(),
        dtype=np.int64,
    ).reshape(-1, 3)
    size = int(stints[:, 0].max()) + 1 if len(stints) else 1
    stint_staff = np.full(size, -1, dtype=np.int64)
    stint_outlet = np.zeros(size, dtype=np.int64)
    stint_staff[stints[:, 0]] = position[stints[:, 1]]
    stint_outlet[stints[:, 0]] = stints[:, 2]
    counts = np.bincount(stints[:, 1], minlength=len(position)) if len(stints) else None
    stint_shared = np.zeros(size, dtype=bool)
    if counts is not None:
        stint_shared[stints[:, 0]] = counts[stints[:, 1]] > 1
    return StaffDirectory(
        stint_shared=stint_shared,
        ids=ids,
        codes=[r[1] for r in rows],
        names=[r[2] for r in rows],
        outlets=np.array([r[3] for r in rows], dtype=np.int64),
        active=np.array([bool(r[4]) for r in rows], dtype=bool),
        position=position,
        stint_staff=stint_staff,
        stint_outlet=stint_outlet,
    )
