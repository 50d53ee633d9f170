"""Periods a board or summary can cover, in Shanghai calendar days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from core.platform.clock import days_between, previous_period
from core.platform.errors import FieldProblem, ValidationFailed

MAX_DAYS = 3 * 366


class PeriodPreset(StrEnum):
    LATEST_DAY = "latest"
    THIS_WEEK = "week"
    THIS_MONTH = "month"
    LAST_30_DAYS = "last30"
    CAMPAIGN = "campaign"
    CUSTOM = "custom"

    @property
    def label(self) -> str:
        return PRESET_LABELS[self]


PRESET_LABELS = {
    PeriodPreset.LATEST_DAY: "最新一日",
    PeriodPreset.THIS_WEEK: "本周",
    PeriodPreset.THIS_MONTH: "本月",
    PeriodPreset.LAST_30_DAYS: "近 30 天",
    PeriodPreset.CAMPAIGN: "活动期间",
    PeriodPreset.CUSTOM: "自定义",
}


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    label: str = ""

    @property
    def days(self) -> int:
        return days_between(self.start, self.end)

    def previous(self) -> Period:
        """The period of the same length just before (for rank change)."""
        start, end = previous_period(self.start, self.end)
        return Period(start, end, "上期")

    def text(self) -> str:
        span = str(self.start) if self.start == self.end else f"{self.start} 至 {self.end}"
        return f"{self.label}（{span}）" if self.label else span


def resolve(
    preset: PeriodPreset,
    *,
    today: date,
    latest: date | None,
    start: date | None = None,
    end: date | None = None,
) -> Period:
    """The concrete dates of a preset. "Latest day" is the newest day with data (numbers
    arrive the morning after), falling back to yesterday when nothing is imported yet."""
    if preset is PeriodPreset.LATEST_DAY:
        day = min(latest, today) if latest else today - timedelta(days=1)
        return Period(day, day, preset.label)
    if preset is PeriodPreset.THIS_WEEK:
        return Period(today - timedelta(days=today.weekday()), today, preset.label)
    if preset is PeriodPreset.THIS_MONTH:
        return Period(today.replace(day=1), today, preset.label)
    if preset is PeriodPreset.LAST_30_DAYS:
        return Period(today - timedelta(days=30), today - timedelta(days=1), preset.label)
    return custom(start, end)


def custom(start: date | None, end: date | None, label: str = "") -> Period:
    if start is None or end is None:
        raise ValidationFailed([FieldProblem("period", "请选择开始和结束日期")])
    if end < start:
        raise ValidationFailed([FieldProblem("period", "结束日期不能早于开始日期")])
    if days_between(start, end) > MAX_DAYS:
        raise ValidationFailed([FieldProblem("period", "时间范围最长 3 年")])
    return Period(start, end, label)
