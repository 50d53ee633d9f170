"""Which periods have metric data yet: a board for a period that starts after the newest
imported day (本月 on the 1st, 本周 on a Monday) would rank every outlet 第1 at zero, so the
pages say so and offer the last period that has data instead."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import Session

from core.metrics.snapshots import latest_date
from core.platform.periods import Period, PeriodPreset


def last_data_day(session: Session) -> date | None:
    """The newest day with imported metrics (None before the first import)."""
    return latest_date(session)


def has_data(period: Period, latest: date | None) -> bool:
    return latest is not None and period.start <= latest


def last_period_with_data(
    period: Period, latest: date | None, preset: PeriodPreset | None = None
) -> Period | None:
    """The period to offer instead of `period` when it has no data yet; None when it has
    data (or when nothing has been imported at all). 本月 becomes the month of the newest
    day, 本周 its week, anything else the same number of days ending on the newest day."""
    if latest is None or has_data(period, latest):
        return None
    if preset is PeriodPreset.THIS_MONTH:
        return Period(latest.replace(day=1), latest, f"{latest.month}月")
    if preset is PeriodPreset.THIS_WEEK:
        monday = latest - timedelta(days=latest.weekday())
        return Period(monday, latest, f"{monday.month}月{monday.day}日起的一周")
    if period.days <= 1:
        return Period(latest, latest, "最新一日")
    return Period(latest - timedelta(days=period.days - 1), latest, f"截至最新的 {period.days} 天")
