"""Periods without data yet and the period offered instead (core/metrics/coverage.py)."""

from datetime import date

from core.metrics.coverage import has_data, last_data_day, last_period_with_data
from core.platform.periods import Period, PeriodPreset, resolve

FIRST = date(2026, 12, 1)  # a Tuesday
LATEST = date(2026, 11, 30)


def test_this_month_on_the_first_offers_the_month_of_the_newest_day() -> None:
    period = resolve(PeriodPreset.THIS_MONTH, today=FIRST, latest=LATEST)
    assert not has_data(period, LATEST)
    offered = last_period_with_data(period, LATEST, PeriodPreset.THIS_MONTH)
    assert offered == Period(date(2026, 11, 1), LATEST, "11月")


def test_this_week_without_data_offers_the_week_of_the_newest_day() -> None:
    period = resolve(PeriodPreset.THIS_WEEK, today=FIRST, latest=date(2026, 11, 29))
    offered = last_period_with_data(period, date(2026, 11, 29), PeriodPreset.THIS_WEEK)
    assert (offered.start, offered.end) == (date(2026, 11, 23), date(2026, 11, 29))


def test_other_periods_keep_their_length_and_end_on_the_newest_day() -> None:
    period = Period(date(2026, 12, 1), date(2026, 12, 10))
    offered = last_period_with_data(period, LATEST)
    assert (offered.start, offered.end, offered.days) == (date(2026, 11, 21), LATEST, 10)


def test_a_period_with_data_or_no_data_at_all_offers_nothing() -> None:
    month = resolve(PeriodPreset.THIS_MONTH, today=date(2026, 12, 2), latest=FIRST)
    assert has_data(month, FIRST)
    assert last_period_with_data(month, FIRST, PeriodPreset.THIS_MONTH) is None
    assert last_period_with_data(month, None, PeriodPreset.THIS_MONTH) is None


def test_last_data_day_reads_the_newest_snapshot(session) -> None:
    assert last_data_day(session) is None
