"""The assignment engine (分配规则): which staff member gets the customer who just scanned.

Pure and deterministic: the same pool, rule, counters and moment give the same answer.
Primary staff are used in their order (round robin), or the least loaded first; nobody is
given more than the daily cap; staff who left are skipped; outside the code's time slots,
or when every primary member is full or gone, the fallback staff take over (least loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from db.models import AssignmentRule


@dataclass(frozen=True)
class PoolMember:
    staff_id: int
    position: int
    active: bool  # False: left the company (离职)
    fallback: bool
    assigned_total: int  # customers so far (load)
    assigned_today: int  # customers today from this code


@dataclass(frozen=True)
class Pick:
    staff_id: int | None
    reason: str
    cursor: int  # the round-robin cursor to store for the next scan
    used_fallback: bool = False


def _parse(span: list[str]) -> tuple[time, time]:
    return time.fromisoformat(span[0]), time.fromisoformat(span[1])


def on_duty(slots: dict[str, Any] | None, moment: datetime) -> bool:
    """Whether the primary staff work at `moment`: no slots means always; a date override
    (holiday: empty, rights day: longer hours) replaces that weekday's slots."""
    if not slots:
        return True
    day: date = moment.date()
    overrides = slots.get("overrides") or {}
    spans = overrides.get(day.isoformat())
    if spans is None:
        spans = (slots.get("weekly") or {}).get(str(day.weekday()), [])
    now = moment.time()
    return any(start <= now < end for start, end in map(_parse, spans))


def pick_staff(
    rule: AssignmentRule,
    pool: list[PoolMember],
    *,
    moment: datetime,
    cursor: int = 0,
    daily_cap: int | None = None,
    slots: dict[str, Any] | None = None,
) -> Pick:
    """The staff member for a scan at `moment` (Shanghai time)."""
    primary = sorted((m for m in pool if not m.fallback and m.active), key=lambda m: m.position)
    fallback = sorted(
        (m for m in pool if m.fallback and m.active), key=lambda m: (m.assigned_total, m.position)
    )
    if on_duty(slots, moment):
        open_ = [m for m in primary if daily_cap is None or m.assigned_today < daily_cap]
        if open_:
            if rule is AssignmentRule.LEAST_LOADED:
                chosen = min(open_, key=lambda m: (m.assigned_total, m.position))
                return Pick(chosen.staff_id, "分给客户最少的员工", cursor)
            chosen = _next_in_turn(primary, open_, cursor)
            return Pick(chosen.staff_id, "轮流分配", primary.index(chosen) + 1)
        why = "主员工今日均已满额" if primary else "主员工均已离职"
    else:
        why = "不在接待时段"
    if fallback:
        return Pick(fallback[0].staff_id, f"{why}，由备用员工接待", cursor, used_fallback=True)
    return Pick(None, f"{why}，且没有备用员工", cursor)


def _next_in_turn(primary: list[PoolMember], open_: list[PoolMember], cursor: int) -> PoolMember:
    """The first open member at or after the cursor, wrapping around."""
    size = len(primary)
    for step in range(size):
        candidate = primary[(cursor + step) % size]
        if candidate in open_:
            return candidate
    return open_[0]
