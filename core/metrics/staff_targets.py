"""Per-staff targets (员工目标): imported per staff member, metric and period, shown on the
staff board as completion against the time elapsed (时间进度), and used by the daily
rights-day reminder to name the staff furthest behind.

File columns: staff code (员工编码), metric (指标: key or Chinese name), start (开始日期),
end (结束日期), target (目标值; yuan for money metrics). All or nothing, every bad line
named; re-importing the same (staff, metric, start) replaces the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from functools import partial

import sqlalchemy as sa
from sqlmodel import Session

from core.metrics.registry import Level, specs
from core.metrics.staff_importing import parse_staff_code
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.cells import CellError, DateWindow, parse_amount_fen, parse_count
from core.platform.cells import parse_date as _parse_date
from core.platform.clock import utcnow
from core.platform.permissions import Action, Actor, Scope, ensure_allowed, scope_of
from core.platform.tabular import Column, FileReport, Row, RowProblem, read_table
from db.bulk import bulk_upsert
from db.engine import write_transaction
from db.models import OrgUnit, Staff, StaffTarget

COLUMNS = (
    Column("staff_code", "员工编码", aliases=("员工账号", "企业微信账号", "wecom_userid")),
    Column("metric", "指标"),
    Column("start", "开始日期"),
    Column("end", "结束日期"),
    Column("target", "目标值", aliases=("目标",)),
)


@dataclass(frozen=True)
class Target:
    value: int
    start: date
    end: date

    def expected_share(self, until: date) -> Fraction:
        """Share of the target period elapsed by `until` (时间进度), 0..1."""
        total = (self.end - self.start).days + 1
        done = (min(until, self.end) - self.start).days + 1
        return Fraction(max(0, min(done, total)), total)

    def behind(self, value: int, until: date) -> bool:
        return self.value > 0 and Fraction(value, self.value) < self.expected_share(until)


def targets_for(
    session: Session, staff_ids: list[int], metric: str, start: date, end: date
) -> dict[int, Target]:
    """Each staff member's target for `metric` whose period covers [start, end] (the one
    starting latest when several do)."""
    if not staff_ids:
        return {}
    rows = session.execute(
        sa.select(
            StaffTarget.staff_id,
            StaffTarget.target,
            StaffTarget.period_start,
            StaffTarget.period_end,
        )
        .where(
            StaffTarget.metric_key == metric,
            StaffTarget.period_start <= start,
            StaffTarget.period_end >= end,
            StaffTarget.staff_id.in_(staff_ids),
        )
        .order_by(StaffTarget.period_start)
    ).all()
    return {sid: Target(int(t), s, e) for sid, t, s, e in rows}


@dataclass
class TargetImportReport(FileReport):
    written: int = 0

    def summary(self) -> str:
        if not self.ok:
            return self.refusal(kept="目标", detail=f"（涉及 {self.bad_lines} 行）")
        if self.dry_run:
            return f"校验通过（未写入）：{self.rows} 条员工目标。"
        return f"导入成功：{self.written} 条员工目标。"


def import_staff_targets(
    session: Session, *, actor: Actor, data: bytes, filename: str, dry_run: bool = False
) -> TargetImportReport:
    """Validate every row; write all targets or none."""
    ensure_allowed(actor, Action.IMPORT_METRICS)
    report = TargetImportReport(filename=filename, dry_run=dry_run)
    table = read_table(data, filename, COLUMNS)
    report.problems.extend(table.problems)
    report.rows = len(table.rows)
    checker = _Checker(session, actor)
    records = []
    for row in table.rows:
        found: list[RowProblem] = []
        record = checker.check(row, found)
        report.problems.extend(found)
        if record and not found:
            records.append(record)
    if not report.ok or dry_run:
        return report
    now = utcnow()
    with write_transaction(session):
        bulk_upsert(
            session,
            "staff_target",
            ("staff_id", "metric_key", "period_start", "period_end", "target", "imported_at"),
            ("staff_id", "metric_key", "period_start"),
            ((*r, now) for r in records),
        )
        report.written = len(records)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.STAFF_TARGETS_IMPORT,
            target_type="file",
            target_id=filename[:64],
            summary=report.summary(),
            after={"targets": report.written},
        )
    return report


class _Checker:
    def __init__(self, session: Session, actor: Actor) -> None:
        city = actor.city_id if scope_of(actor, Action.IMPORT_METRICS) is Scope.CITY else None
        query = sa.select(Staff.wecom_userid, Staff.id, OrgUnit.city_id).join(
            OrgUnit, OrgUnit.id == Staff.outlet_id
        )
        self.staff = {code: (sid, c) for code, sid, c in session.execute(query)}
        self.city = city
        self.metrics = specs(session, Level.STAFF)
        self.by_name = {s.label: k for k, s in self.metrics.items()}
        self.seen: dict[tuple, int] = {}
        # a target period may run into the future (this month, this quarter)
        now = DateWindow.current()
        self.parse_date = partial(
            _parse_date, window=DateWindow(now.earliest, now.now + timedelta(days=800))
        )

    def check(self, row: Row, problems: list[RowProblem]) -> tuple | None:
        cells, line = row.cells, row.line

        def cell(key: str, label: str, parse):
            try:
                return parse(cells.get(key))
            except CellError as exc:
                problems.append(RowProblem(line, label, str(cells.get(key) or "")[:40], str(exc)))
                return None

        code = cell("staff_code", "员工编码", parse_staff_code)
        staff = self.staff.get(code) if code else None
        if code and (staff is None or (self.city is not None and staff[1] != self.city)):
            problems.append(
                RowProblem(line, "员工编码", code, "员工编码不存在或不在您的管辖范围内")
            )
        raw_metric = str(cells.get("metric") or "").strip()
        key = raw_metric if raw_metric in self.metrics else self.by_name.get(raw_metric)
        if key is None:
            problems.append(RowProblem(line, "指标", raw_metric[:40], "未知的员工指标"))
        start = cell("start", "开始日期", self.parse_date)
        end = cell("end", "结束日期", self.parse_date)
        if start and end and end < start:
            problems.append(RowProblem(line, "结束日期", str(end), "结束日期不能早于开始日期"))
        money = key is not None and self.metrics[key].is_money
        target = cell(
            "target", "目标值", partial(parse_amount_fen if money else parse_count, what="目标值")
        )
        if problems or staff is None or key is None or start is None or end is None:
            return None
        first = self.seen.setdefault((staff[0], key, start), line)
        if first != line:
            problems.append(
                RowProblem(line, "员工编码/指标/开始日期", code, f"与第 {first} 行重复")
            )
            return None
        return (staff[0], key, start, end, target)


@dataclass(frozen=True)
class Behind:
    staff_name: str
    metric_label: str
    completion: Fraction  # share of the target reached
    expected: Fraction  # share of the target period elapsed


def furthest_behind(session: Session, outlet_id: int, day: date, limit: int = 3) -> list[Behind]:
    """The outlet's active staff furthest behind their targets running on `day` (completion
    against the time elapsed, data up to the latest staff day), worst first. For the daily
    rights-day reminder to the outlet's manager; no actor: a scheduled job's read."""
    from core.metrics import series
    from core.metrics.registry import all_specs
    from core.metrics.staff_directory import staff_directory

    rows = session.execute(
        sa.select(
            StaffTarget.staff_id,
            StaffTarget.metric_key,
            StaffTarget.period_start,
            StaffTarget.period_end,
            StaffTarget.target,
            Staff.name,
        )
        .join(Staff, Staff.id == StaffTarget.staff_id)
        .where(
            Staff.outlet_id == outlet_id,
            Staff.active,
            StaffTarget.period_start <= day,
            StaffTarget.period_end >= day,
            StaffTarget.target > 0,
        )
    ).all()
    if not rows:
        return []
    metrics, sd = all_specs(session), staff_directory(session)
    found = []
    for staff_id, key, start, end, target, name in rows:
        spec = metrics.get(key)
        until = min(day, series.latest_date(session, "staff", key) or start)
        if spec is None or until < start:
            continue
        values, _ = series.period(session, "staff", key, spec.kind, start, until, sd.stint_size)
        value = int(values[sd.stints_of(staff_id)].sum())  # every outlet they were at
        goal = Target(int(target), start, end)
        if goal.behind(value, until):
            found.append(
                Behind(name, spec.label, Fraction(value, goal.value), goal.expected_share(until))
            )
    found.sort(key=lambda b: (b.completion - b.expected, b.staff_name))
    return found[:limit]
