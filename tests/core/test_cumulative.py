"""The running totals behind every board must equal the rules computed the slow way,
for any period, after any sequence of imports (including re-imports of old days)."""

import random
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import snapshots
from core.metrics.importing import import_metrics
from core.metrics.values import METRICS, MetricKind, daily_series
from core.platform.directory import outlet_directory
from core.platform.permissions import Role
from core.platform.settings import get_settings
from db.models import MetricSnapshot
from tests.factories import all_totals, make_tree, make_users, metrics_csv, period_by_code

START = date(2026, 9, 1)
DAYS = 40


def reference(
    rows: dict[tuple[date, str], tuple], start: date, end: date, code: str
) -> dict[str, int]:
    """DESIGN.md's rules, literally: flows summed, stocks at the last date ≤ end with data."""
    mine = {d: v for (d, c), v in rows.items() if c == code}
    result = {}
    for index, (key, spec) in enumerate(METRICS.items()):
        if spec.kind is MetricKind.FLOW:
            result[key] = sum(v[index] for d, v in mine.items() if start <= d <= end)
        else:
            known = [d for d in mine if d <= end]
            result[key] = mine[max(known)][index] if known else 0
    return result


def random_rows(
    rng: random.Random, codes: list[str], days: list[date]
) -> dict[tuple[date, str], tuple]:
    rows = {}
    for code in codes:
        for day in days:
            if rng.random() < 0.75:
                rows[(day, code)] = (
                    rng.randint(0, 9),
                    rng.randint(0, 500),
                    rng.randint(0, 5),
                    rng.randint(0, 300),
                    rng.randint(0, 3),
                    rng.randint(-50_000, 90_000),
                )
    return rows


def as_csv(rows: dict[tuple[date, str], tuple]) -> bytes:
    lines = []
    for (day, code), (nf, tf, gr, gm, cv, fen) in rows.items():
        sign = "-" if fen < 0 else ""
        lines.append(
            (day, code, nf, tf, gr, gm, cv, f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}")
        )
    return metrics_csv(lines)


def per_outlet(session: Session, start: date, end: date) -> dict[str, dict[str, int]]:
    return period_by_code(session, start, end)


def assert_matches(session: Session, rows: dict, codes: list[str], rng: random.Random) -> None:
    horizon = max(d for d, _ in rows)
    periods = [
        (START, START),
        (START, horizon),
        (START + timedelta(days=5), horizon + timedelta(days=10)),
        (START - timedelta(days=30), START - timedelta(days=1)),
        (horizon + timedelta(days=1), horizon + timedelta(days=3)),
    ]
    for _ in range(12):
        a = START + timedelta(days=rng.randint(-3, DAYS + 3))
        periods.append((a, a + timedelta(days=rng.randint(0, 20))))
    for start, end in periods:
        got = per_outlet(session, start, end)
        for code in codes:
            assert got[code] == reference(rows, start, end, code), (code, start, end)
        total = all_totals(session, start, end)
        for key in METRICS:
            assert total[key] == sum(reference(rows, start, end, c)[key] for c in codes), (
                key,
                start,
                end,
            )


def test_running_totals_equal_the_rules_after_imports_and_reimports(session: Session) -> None:
    tree = make_tree(session)
    admin = make_users(session)[Role.ADMIN]
    codes = sorted(tree.outlets)
    rng = random.Random(7)
    days = [START + timedelta(days=i) for i in range(DAYS)]
    rows = random_rows(rng, codes, days)
    # import in three slices, oldest last: exercises carry-forward and rebuilds
    slices = [days[10:25], days[25:], days[:10]]
    for piece in slices:
        part = {k: v for k, v in rows.items() if k[0] in piece}
        assert import_metrics(session, actor=admin, data=as_csv(part), filename="m.csv").ok
    assert_matches(session, rows, codes, rng)
    # re-import an old day with new values and a new outlet appearing on it
    old_day = days[3]
    changed = {(old_day, c): (9, 999, 9, 99, 9, -12345) for c in codes}
    rows.update(changed)
    assert import_metrics(session, actor=admin, data=as_csv(changed), filename="old.csv").ok
    assert_matches(session, rows, codes, rng)


def test_outlet_that_stops_reporting_keeps_its_last_stock_and_zero_flows(session: Session) -> None:
    make_tree(session)
    admin = make_users(session)[Role.ADMIN]
    rows = [
        (date(2026, 10, 1), "O111", 5, 100, 3, 50, 1, 10),
        (date(2026, 10, 5), "O112", 1, 7, 1, 2, 0, 0),
    ]
    assert import_metrics(session, actor=admin, data=metrics_csv(rows), filename="m.csv").ok
    got = per_outlet(session, date(2026, 10, 3), date(2026, 10, 5))
    assert got["O111"] == {
        "new_friends": 0,
        "total_friends": 100,
        "groups": 3,
        "group_members": 50,
        "conversions": 0,
        "deposits": 0,
    }
    assert all(v == 0 for v in got["O113"].values())  # never reported: zero everywhere


@pytest.mark.parametrize("end_offset", [0, 30])
def test_horizon_clamps_periods_beyond_the_data(session: Session, end_offset: int) -> None:
    make_tree(session)
    admin = make_users(session)[Role.ADMIN]
    rows = [(date(2026, 10, 1), "O111", 5, 100, 3, 50, 1, 10)]
    assert import_metrics(session, actor=admin, data=metrics_csv(rows), filename="m.csv").ok
    end = date(2026, 10, 1) + timedelta(days=end_offset)
    assert per_outlet(session, date(2026, 10, 1), end)["O111"]["new_friends"] == 5


def daily_reference(rows: dict, codes: list[str], start: date, end: date) -> list[tuple]:
    """Per day with data in [start, end] (clamped to the data): the summed flows."""
    days = [d for d, _ in rows]
    day, last, series = max(start, min(days)), min(end, max(days)), []
    while day <= last:
        mine = [v for (d, c), v in rows.items() if d == day and c in codes]
        series.append(
            (day, sum(v[0] for v in mine), sum(v[4] for v in mine), sum(v[5] for v in mine))
        )
        day += timedelta(days=1)
    return series


def snapshot_dates(session: Session) -> set[date]:
    return set(session.execute(sa.select(MetricSnapshot.date)).scalars())


def test_gaps_and_an_old_day_imported_last_stay_exact(session: Session) -> None:
    tree = make_tree(session)
    admin = make_users(session)[Role.ADMIN]
    codes = sorted(tree.outlets)
    rng = random.Random(11)
    # days without any data between the imported ones: 3–4, 7–9, 13–19, 22–29 …
    offsets = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21, 30, 35, 39]
    days = [START + timedelta(days=i) for i in offsets]
    rows = random_rows(rng, codes, days)
    for piece in (days[5:9], days[9:], days[:5]):  # the oldest slice last
        part = {k: v for k, v in rows.items() if k[0] in piece}
        assert import_metrics(session, actor=admin, data=as_csv(part), filename="m.csv").ok
    assert_matches(session, rows, codes, rng)
    # a day far before everything, then a day inside a gap, each after the newer data
    for day in (date(2025, 3, 1), START + timedelta(days=15)):
        new = {(day, c): (rng.randint(0, 9), 40, 2, 20, 1, 700) for c in codes[:3]}
        rows.update(new)
        assert import_metrics(session, actor=admin, data=as_csv(new), filename="old.csv").ok
    assert_matches(session, rows, codes, rng)
    for start, end in [(date(2025, 2, 1), date(2025, 3, 1)), (date(2025, 3, 2), START)]:
        got = per_outlet(session, start, end)
        assert all(got[c] == reference(rows, start, end, c) for c in codes), (start, end)
    # snapshots only for days with rows: the gaps cost nothing
    assert snapshot_dates(session) == {d for d, _ in rows}
    directory = outlet_directory(session)
    mask = directory.scope_mask(city_id=tree.cities["C1"].id)
    c1 = [c for c in codes if c.startswith("O1")]
    for start, end in [(START + timedelta(days=3), START + timedelta(days=25)), (START, START)]:
        series = daily_series(session, directory, mask, start, end)
        got = [(p.day, p.new_friends, p.conversions, p.deposits_fen) for p in series]
        assert got == daily_reference(rows, c1, start, end), (start, end)


def test_an_old_day_costs_one_snapshot_plus_the_later_ones(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_tree(session)
    admin = make_users(session)[Role.ADMIN]
    codes = sorted(tree.outlets)
    rng = random.Random(5)
    days = [START + timedelta(days=i) for i in range(30)]
    rows = random_rows(rng, codes, days)
    assert import_metrics(session, actor=admin, data=as_csv(rows), filename="m.csv").ok
    writes: list[date] = []
    save = snapshots._save

    def counted(s: Session, snapshot: snapshots.Snapshot, exists: bool) -> None:
        writes.append(snapshot.day)
        save(s, snapshot, exists)

    monkeypatch.setattr(snapshots, "_save", counted)
    earliest = get_settings().metrics_earliest
    old = {(earliest, "O111"): (3, 30, 1, 10, 1, 500)}
    rows.update(old)
    assert import_metrics(session, actor=admin, data=as_csv(old), filename="old.csv").ok
    assert len(writes) <= 31 and earliest in writes
    assert len(snapshot_dates(session)) == 31
    assert_matches(session, rows, codes, rng)
    got = per_outlet(session, earliest, START)
    assert all(got[c] == reference(rows, earliest, START, c) for c in codes)
