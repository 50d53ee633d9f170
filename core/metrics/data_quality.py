"""The nightly data-quality check (数据质量): outlets that did not report a day, and values
more than 5 standard deviations from the outlet's own last 90 days; and the page's report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, select

from core.metrics import snapshots
from core.metrics.values import reported_mask
from core.platform.directory import OutletDirectory, outlet_directory
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import DailyMetric, DataQualityIssue

OUTLIER_SIGMAS = 5
HISTORY_DAYS = 90
METRIC_LABELS = {"new_friends": "新增好友", "conversions": "转化客户", "deposits": "新增存款"}
MONEY_METRICS = frozenset({"deposits"})  # stored in fen; shown in 元


def check_day(session: Session, day: date) -> str:
    """Find the day's silent outlets and outliers; replaces that day's findings (idempotent)."""
    directory = outlet_directory(session)
    issues = _missing(session, directory, day) + _outliers(session, day)
    with write_transaction(session):
        session.execute(sa.delete(DataQualityIssue).where(DataQualityIssue.date == day))
        session.add_all(issues)
    missing = sum(1 for i in issues if i.kind == "missing")
    return f"{day}：{missing} 个网点未上报，{len(issues) - missing} 个异常值"


def _missing(session: Session, directory: OutletDirectory, day: date) -> list[DataQualityIssue]:
    before = snapshots.state_at(session, day - timedelta(days=1), directory.size, fields=())
    ever = before.arrays["reported"][directory.ids]  # outlets never on board are not "missing"
    silent = directory.ids[ever & ~reported_mask(session, directory, day)]
    return [DataQualityIssue(date=day, outlet_id=int(o), kind="missing") for o in silent.tolist()]


def _outliers(session: Session, day: date) -> list[DataQualityIssue]:
    columns = {
        "new_friends": DailyMetric.new_friends,
        "conversions": DailyMetric.conversions,
        "deposits": DailyMetric.deposits_fen,
    }
    rows = session.execute(
        sa.select(DailyMetric.outlet_id, DailyMetric.date, *columns.values()).where(
            DailyMetric.date.between(day - timedelta(days=HISTORY_DAYS), day)
        )
    ).all()
    if not rows:
        return []
    data = np.array([(r[0], (r[1] - day).days, *r[2:]) for r in rows], dtype=np.float64)
    # Every outlet's mean and standard deviation at once (grouped sums, two passes for
    # precision): one pass over the rows per metric, however many outlets there are.
    outlet_ids, slot = np.unique(data[:, 0].astype(np.int64), return_inverse=True)
    past, today = data[:, 1] < 0, data[:, 1] == 0
    count = np.bincount(slot[past], minlength=len(outlet_ids))
    has_today = np.zeros(len(outlet_ids), dtype=bool)
    has_today[slot[today]] = True
    enough = has_today & (count >= 14)  # too little history calls nothing unusual
    found = []
    for index, metric in enumerate(columns, start=2):
        values = data[:, index]
        mean = _group_mean(slot[past], values[past], count)
        sd = np.sqrt(_group_mean(slot[past], (values[past] - mean[slot[past]]) ** 2, count))
        latest = np.zeros(len(outlet_ids))
        latest[slot[today]] = values[today]
        flagged = enough & (sd > 0) & (np.abs(latest - mean) > OUTLIER_SIGMAS * sd)
        found += [
            DataQualityIssue(
                date=day,
                outlet_id=int(outlet_ids[i]),
                kind="outlier",
                metric=metric,
                value=int(latest[i]),
                mean=round(float(mean[i]), 2),
                stddev=round(float(sd[i]), 2),
            )
            for i in np.flatnonzero(flagged)
        ]
    return found


def _group_mean(groups: np.ndarray, values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Mean of `values` per group, 0 for a group without values."""
    # float64 throughout: on no values at all (the first day with data) bincount gives ints
    sums = np.bincount(groups, weights=values, minlength=len(count)).astype(np.float64)
    return np.divide(sums, count, out=np.zeros(len(count)), where=count > 0)


@dataclass(frozen=True)
class Finding:
    kind: str
    outlet_code: str
    outlet_name: str
    city: str
    metric: str
    value: int | None
    mean: float | None
    stddev: float | None
    is_money: bool = False  # value, mean and stddev are fen


@dataclass(frozen=True)
class QualityReport:
    day: date | None  # the newest day checked
    missing: list[Finding]
    outliers: list[Finding]


def report(session: Session, *, actor: Actor, day: date | None = None) -> QualityReport:
    """The findings of the newest (or a given) checked day, within the actor's scope."""
    ensure_allowed(actor, Action.VIEW_DATA_QUALITY)
    day = day or session.execute(sa.select(sa.func.max(DataQualityIssue.date))).scalar_one()
    if day is None:
        return QualityReport(None, [], [])
    directory = outlet_directory(session)
    visible = set(directory.ids[directory.mask_for(actor, Action.VIEW_DATA_QUALITY)].tolist())
    position = {int(o): i for i, o in enumerate(directory.ids.tolist())}
    findings = []
    for issue in session.exec(
        select(DataQualityIssue).where(DataQualityIssue.date == day).order_by(DataQualityIssue.id)
    ):
        if issue.outlet_id not in visible:
            continue
        i = position[issue.outlet_id]
        findings.append(
            Finding(
                issue.kind,
                directory.codes[i],
                directory.names[i],
                directory.unit_names.get(int(directory.city_ids[i]), ""),
                METRIC_LABELS.get(issue.metric, issue.metric),
                issue.value,
                issue.mean,
                issue.stddev,
                issue.metric in MONEY_METRICS,
            )
        )
    return QualityReport(
        day,
        [f for f in findings if f.kind == "missing"],
        [f for f in findings if f.kind == "outlier"],
    )
