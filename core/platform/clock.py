"""Time in Asia/Shanghai, the only business time zone of the app.

Timestamps are aware datetimes stored in UTC (SQLModel refuses naive ones); business
dates (metrics, rights days, periods) are Shanghai calendar dates.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from db.models.base import utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")

__all__ = [
    "SHANGHAI",
    "days_between",
    "previous_period",
    "shanghai_now",
    "shanghai_today",
    "to_shanghai",
    "utcnow",
]


def shanghai_now() -> datetime:
    return datetime.now(SHANGHAI)


def shanghai_today() -> date:
    return shanghai_now().date()


def to_shanghai(moment: datetime) -> datetime:
    """An aware timestamp as Shanghai wall-clock time, for display."""
    return moment.astimezone(SHANGHAI)


def format_timestamp(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return to_shanghai(moment).strftime("%Y-%m-%d %H:%M")


def days_between(start: date, end: date) -> int:
    """Number of days in the closed range [start, end]."""
    return (end - start).days + 1


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length that ends the day before `start`."""
    length = days_between(start, end)
    prev_end = start - timedelta(days=1)
    return prev_end - timedelta(days=length - 1), prev_end
