"""The assignment engine: rules, caps, fallbacks, leavers, time slots — including
property-based checks over random pools and scan sequences."""

from dataclasses import replace
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from core.channels.assignment import PoolMember, on_duty, pick_staff, slot_problems
from db.models import AssignmentRule

NOON = datetime(2026, 11, 25, 12, 0)  # a Wednesday


def member(
    staff_id: int,
    position: int = 0,
    *,
    active: bool = True,
    fallback: bool = False,
    total: int = 0,
    today: int = 0,
) -> PoolMember:
    return PoolMember(staff_id, position, active, fallback, total, today)


def run(rule: AssignmentRule, pool: list[PoolMember], scans: int, **kw: object) -> list[int | None]:
    """Pick for `scans` scans in a row, updating counters like the service does."""
    picked, cursor = [], 0
    members = {m.staff_id: m for m in pool}
    for _ in range(scans):
        result = pick_staff(rule, list(members.values()), moment=NOON, cursor=cursor, **kw)
        picked.append(result.staff_id)
        cursor = result.cursor
        if result.staff_id is not None:
            m = members[result.staff_id]
            members[m.staff_id] = replace(
                m, assigned_total=m.assigned_total + 1, assigned_today=m.assigned_today + 1
            )
    return picked


def test_round_robin_takes_turns_and_skips_leavers() -> None:
    pool = [member(1, 0), member(2, 1, active=False), member(3, 2)]
    assert run(AssignmentRule.ROUND_ROBIN, pool, 5) == [1, 3, 1, 3, 1]


def test_least_loaded_evens_out() -> None:
    pool = [member(1, 0, total=5), member(2, 1, total=1), member(3, 2, total=3)]
    assert run(AssignmentRule.LEAST_LOADED, pool, 7) == [2, 2, 2, 3, 2, 3, 1]  # ties go by position


def test_daily_cap_then_fallback_then_nobody() -> None:
    pool = [member(1, 0), member(2, 1), member(9, 0, fallback=True)]
    assert run(AssignmentRule.DAILY_CAP, pool, 6, daily_cap=2) == [1, 2, 1, 2, 9, 9]
    no_fallback = [member(1, 0, today=2)]
    result = pick_staff(AssignmentRule.DAILY_CAP, no_fallback, moment=NOON, daily_cap=2)
    assert result.staff_id is None and "满额" in result.reason


def test_everyone_left_goes_to_fallback() -> None:
    result = pick_staff(
        AssignmentRule.ROUND_ROBIN, [member(1, active=False), member(5, fallback=True)], moment=NOON
    )
    assert (result.staff_id, result.used_fallback) == (5, True) and "离职" in result.reason


def test_time_slots_with_overrides() -> None:
    slots = {
        "weekly": {"2": [["09:00", "17:30"]]},
        "overrides": {"2026-11-28": [["08:00", "20:00"]], "2026-11-25": []},
    }
    assert not on_duty(slots, NOON)  # Wednesday the 25th is overridden as closed
    assert on_duty(slots, datetime(2026, 11, 18, 12, 0))  # an ordinary Wednesday
    assert not on_duty(slots, datetime(2026, 11, 18, 18, 0))
    assert on_duty(slots, datetime(2026, 11, 28, 19, 0))  # a rights day with longer hours
    off = pick_staff(
        AssignmentRule.ROUND_ROBIN, [member(1), member(7, fallback=True)], moment=NOON, slots=slots
    )
    assert off.staff_id == 7 and "不在接待时段" in off.reason


pools = st.lists(
    st.builds(
        PoolMember,
        staff_id=st.integers(1, 10_000),
        position=st.integers(0, 9),
        active=st.booleans(),
        fallback=st.booleans(),
        assigned_total=st.integers(0, 50),
        assigned_today=st.integers(0, 5),
    ),
    max_size=8,
    unique_by=lambda m: m.staff_id,
)


@settings(max_examples=300, deadline=None)
@given(
    pool=pools,
    rule=st.sampled_from(list(AssignmentRule)),
    cap=st.none() | st.integers(1, 5),
    cursor=st.integers(0, 20),
)
def test_properties(
    pool: list[PoolMember], rule: AssignmentRule, cap: int | None, cursor: int
) -> None:
    result = pick_staff(rule, pool, moment=NOON, cursor=cursor, daily_cap=cap)
    again = pick_staff(rule, pool, moment=NOON, cursor=cursor, daily_cap=cap)
    assert result == again  # deterministic
    by_id = {m.staff_id: m for m in pool}
    if result.staff_id is None:
        # nobody was available: no active fallback, and every active primary is full
        assert not any(m.active and m.fallback for m in pool)
        assert all(
            m.fallback or not m.active or (cap is not None and m.assigned_today >= cap)
            for m in pool
        )
        return
    chosen = by_id[result.staff_id]
    assert chosen.active  # never someone who left
    if not chosen.fallback and cap is not None:
        assert chosen.assigned_today < cap  # never over the cap
    if chosen.fallback:
        assert all(
            m.fallback or not m.active or (cap is not None and m.assigned_today >= cap)
            for m in pool
        )


def test_slots_from_a_form() -> None:
    from core.channels.assignment import build_slots

    assert build_slots([], "09:00", "17:30", "") == (None, [])
    slots, problems = build_slots(
        [0, 1, 2, 3, 4], "09:00", "17:30", "2026-12-08 08:00-20:00\n2026-10-01 休息"
    )
    assert problems == []
    assert slots["weekly"]["4"] == [["09:00", "17:30"]] and "5" not in slots["weekly"]
    assert slots["overrides"] == {"2026-12-08": [["08:00", "20:00"]], "2026-10-01": []}
    assert on_duty(slots, datetime(2026, 12, 8, 19, 0)) and not on_duty(
        slots, datetime(2026, 10, 1, 10, 0)
    )
    _, bad = build_slots([0], "18:00", "09:00", "明天 全天")
    assert len(bad) == 2 and "晚于" in bad[0] and "第 1 行" in bad[1]
    assert slot_problems(slots) == []  # what a form builds is what core accepts


def test_stored_slots_are_checked_whoever_built_them() -> None:
    assert slot_problems(None) == []
    assert slot_problems({"weekly": {"0": [["18:00", "09:00"]]}}) == [
        "接待时段的结束时间须晚于开始时间"
    ]
    assert slot_problems({"weekly": {"7": []}}) == ["每周接待日须为周一至周日"]
    assert slot_problems({"overrides": {"明天": []}}) == ["特殊日期无法识别：明天"]
    assert slot_problems({"weekly": {"1": [["9am"]]}}) == ["接待时段须写作 09:00-17:30 这样的时间"]
    assert slot_problems({"weekly": ["09:00"]}) == ["接待时段格式不正确"]
    assert slot_problems({"weekly": {"1": [["09:00"]]}}) == [
        "接待时段须写作 09:00-17:30 这样的时间"
    ]
