"""The uplift of a campaign against outlets that did not take part (差异中的差异, DiD).

For each flow metric (new friends, conversions, new deposits):
- Δ of an outlet = its sum over the campaign days (start to the earlier of the end and the
  last data day) minus its sum over the same number of days just before the start;
- treated = the campaign's participating outlets; control = the province's outlets that
  were in no campaign (approved or later) overlapping either window;
- uplift per outlet = mean(Δ treated) − mean(Δ control); the total = that × the number of
  treated outlets;
- a 95 % interval from a percentile bootstrap: 1,000 resamples, outlets resampled within
  each group, a fixed seed (a new generator per metric, so each figure can be recomputed
  on its own).
With no control outlets, or fewer than 10 in either group, there is no estimate, and the
reason says why. Deposits are in fen, rounded to whole fen like every amount.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

FLOW_METRICS = ("new_friends", "conversions", "deposits")
MONEY_METRICS = frozenset({"deposits"})
RESAMPLES = 1_000
SEED = 20_261_201
MIN_GROUP = 10


@dataclass(frozen=True)
class Windows:
    start: date  # campaign days actually measured: [start, end]
    end: date
    pre_start: date  # the same number of days just before the start
    pre_end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def windows(start: date, end: date, last_data_day: date | None) -> Windows | None:
    """The two windows, or None when the campaign has no data day yet."""
    if last_data_day is None or last_data_day < start:
        return None
    last = min(end, last_data_day)
    days = (last - start).days + 1
    return Windows(start, last, start - timedelta(days=days), start - timedelta(days=1))


@dataclass(frozen=True)
class Uplift:
    metric: str
    per_outlet: float | None
    total: float | None
    ci_low: float | None
    ci_high: float | None
    treated: list[str]  # outlet codes
    control: list[str]
    reason: str = ""  # why there is no estimate

    def as_json(self) -> dict[str, object]:
        return {
            "per_outlet": self.per_outlet,
            "total": self.total,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "treated": self.treated,
            "control": self.control,
        }


def no_estimate_reason(treated: int, control: int) -> str:
    if control == 0:
        return "没有可比的对照网点（全省网点都参加了同期活动），无法估计提升"
    if treated < MIN_GROUP:
        return f"参与网点只有 {treated} 个（少于 {MIN_GROUP} 个），样本太少，不做估计"
    if control < MIN_GROUP:
        return f"对照网点只有 {control} 个（少于 {MIN_GROUP} 个），样本太少，不做估计"
    return ""


def _round(metric: str, value: float) -> float:
    # Money is whole fen; counts keep two decimals (an average of outlets).
    return float(round(value)) if metric in MONEY_METRICS else round(float(value), 2)


def estimate(
    metric: str,
    treated_delta: np.ndarray,
    control_delta: np.ndarray,
    treated_codes: Iterable[str],
    control_codes: Iterable[str],
) -> Uplift:
    """The DiD figure of one metric from the outlets' Δ (aligned with their codes)."""
    treated, control = list(treated_codes), list(control_codes)
    reason = no_estimate_reason(len(treated), len(control))
    if reason:
        return Uplift(metric, None, None, None, None, treated, control, reason)
    t = np.asarray(treated_delta, dtype=np.float64)
    c = np.asarray(control_delta, dtype=np.float64)
    per_outlet = t.mean() - c.mean()
    rng = np.random.default_rng(SEED)
    t_idx = rng.integers(0, len(t), size=(RESAMPLES, len(t)))
    c_idx = rng.integers(0, len(c), size=(RESAMPLES, len(c)))
    samples = t[t_idx].mean(axis=1) - c[c_idx].mean(axis=1)
    low, high = np.percentile(samples, [2.5, 97.5])
    return Uplift(
        metric,
        _round(metric, per_outlet),
        _round(metric, per_outlet * len(t)),
        _round(metric, low),
        _round(metric, high),
        treated,
        control,
    )


def sentence(uplift: Uplift, label: str, unit: str, fmt=lambda v: f"{v:,.2f}") -> str:
    """One plain Chinese sentence a reviewer can read."""
    if uplift.per_outlet is None:
        return f"{label}：{uplift.reason}。"
    direction = "多" if uplift.per_outlet >= 0 else "少"
    return (
        f"{label}：与同期未参加活动的 {len(uplift.control)} 个网点相比，参与活动的 "
        f"{len(uplift.treated)} 个网点平均每个{direction}了 {fmt(abs(uplift.per_outlet))}{unit}"
        f"（95% 区间 {fmt(uplift.ci_low)} 至 {fmt(uplift.ci_high)}{unit}），"
        f"合计约 {fmt(uplift.total)}{unit}；{_certainty(uplift)}"
    )


def _certainty(uplift: Uplift) -> str:
    if (
        uplift.ci_low is not None
        and uplift.ci_high is not None
        and uplift.ci_low <= 0 <= uplift.ci_high
    ):
        return "区间跨过 0，这个差别可能只是偶然，不能认定活动带来了提升。"
    return "区间不含 0，这个差别不大像是偶然。"
