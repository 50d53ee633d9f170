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


def slot_problems(slots: dict[str, Any] | None) -> list[str]:
    """What is wrong with stored time slots, whoever built them: every scan reads them, so a
    malformed span must be refused when the code is saved, not when a customer scans."""
    if slots is None:
        return []
    weekly, overrides = slots.get("weekly") or {}, slots.get("overrides") or {}
    if not isinstance(weekly, dict) or not isinstance(overrides, dict):
        return ["接待时段格式不正确"]
    problems = []
    if any(key not in {str(d) for d in range(7)} for key in weekly):
        problems.append("每周接待日须为周一至周日")
    for key in overrides:
        try:
            date.fromisoformat(key)
        except (TypeError, ValueError):
            problems.append(f"特殊日期无法识别：{key}")
    for spans in [*weekly.values(), *overrides.values()]:
        try:
            if any(start >= end for start, end in map(_parse, spans)):
                problems.append("接待时段的结束时间须晚于开始时间")
        except (TypeError, ValueError, IndexError):
            problems.append("接待时段须写作 09:00-17:30 这样的时间")
    return sorted(set(problems))


def build_slots(
    weekdays: list[int], start: str, end: str, overrides: str
) -> tuple[dict[str, Any] | None, list[str]]:
    """Time slots from what a form holds: the same hours on some weekdays, plus one override
    per line ("2026-12-08 08:00-20:00" for a rights day, "2026-10-01 休息" for a holiday).
    Returns (slots or None for "always", Chinese problems)."""
    problems: list[str] = []
    if not weekdays and not overrides.strip():
        return None, problems
    try:
        if time.fromisoformat(start) >= time.fromisoformat(end):
            problems.append("接待时段的结束时间须晚于开始时间")
    except ValueError:
        problems.append("接待时段须写作 09:00 这样的时间")
    slots: dict[str, Any] = {
        "weekly": {str(d): [[start, end]] for d in sorted(set(weekdays))},
        "overrides": {},
    }
    for number, line in enumerate(overrides.strip().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            day = date.fromisoformat(parts[0])
        except ValueError:
            problems.append(f"特殊日期第 {number} 行的日期无法识别：{parts[0]}")
            continue
        if len(parts) == 2 and parts[1] in ("休息", "关闭", "closed"):
            slots["overrides"][day.isoformat()] = []
            continue
        span = parts[1].split("-") if len(parts) == 2 else []
        try:
            if len(span) != 2 or time.fromisoformat(span[0]) >= time.fromisoformat(span[1]):
                raise ValueError
        except ValueError:
            problems.append(
                f"特殊日期第 {number} 行须写作「2026-12-08 08:00-20:00」或「2026-10-01 休息」"
            )
            continue
        slots["overrides"][day.isoformat()] = [span]
    return slots, problems
