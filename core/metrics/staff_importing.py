"""Importing daily per-staff metrics (员工日报): one row per (date, staff member) with the
outlet they worked at that day (optional: their current outlet) and a value for any of the
registry's staff metrics. Same rules as the outlet import: the shared reader, the date
window, every bad line named, the whole file or nothing; re-importing a (date, staff)
replaces it, and moves all of that day's values to the outlet named last (a staff member
is at one outlet on a given day).

Values are stored per stint (staff member × outlet), so a transfer or a departure keeps the
history at the outlet where it was earned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import partial

import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import series
from core.metrics.kinds import MetricSpec
from core.metrics.registry import Level, all_specs
from core.metrics.registry_columns import (
    extra_columns,
    parse_values,
    registry_extras,
    value_parsers,
)
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.cells import CellError, DateWindow, parse_code, parse_date, parse_text
from core.platform.permissions import Action, Actor, Scope, ensure_allowed, scope_of
from core.platform.tabular import Column, FileReport, Row, RowProblem, read_table
from db.bulk import bulk_upsert
from db.engine import is_postgres, write_transaction
from db.models import OrgLevel, OrgUnit, Staff, StaffMetricValue, StaffStint

KEY_COLUMNS = (
    Column("date", "日期"),
    Column(
        "staff_code", "员工编码", aliases=("员工账号", "企业微信账号", "wecom_userid", "userid")
    ),
    Column("outlet_code", "网点编码", required=False),
)


def parse_staff_code(value: object) -> str:
    """A staff code is the WeCom userid (up to 64 characters, as WeCom allows)."""
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return parse_text(value, max_len=64, what="员工编码")


@dataclass
class StaffImportReport(FileReport):
    written: int = 0
    staff: int = 0
    metrics: list[str] = field(default_factory=list)
    first_date: date | None = None
    last_date: date | None = None

    def summary(self) -> str:
        if not self.ok:
            return self.refusal(detail=f"（涉及 {self.bad_lines} 行）")
        span = f"{self.first_date} 至 {self.last_date}" if self.first_date else ""
        what = f"{self.rows} 行，{self.staff} 名员工，指标：{'、'.join(self.metrics)}，{span}"
        if self.dry_run:
            return f"校验通过（未写入）：{what}。"
        return f"导入成功：{what}，共写入 {self.written} 个数值。"


@dataclass(frozen=True)
class _Record:
    line: int
    day: date
    staff_id: int
    outlet_id: int
    values: tuple[tuple[str, int], ...]


def import_staff_metrics(
    session: Session, *, actor: Actor, data: bytes, filename: str, dry_run: bool = False
) -> StaffImportReport:
    """Validate the whole file; write it only when every row is valid (all or nothing)."""
    ensure_allowed(actor, Action.IMPORT_METRICS)
    report = StaffImportReport(filename=filename, dry_run=dry_run)
    metrics = registry_extras(session, Level.STAFF)
    table = read_table(data, filename, (*KEY_COLUMNS, *extra_columns(metrics)))
    report.problems.extend(table.problems)
    report.rows = len(table.rows)
    if table.rows and not any(k in table.rows[0].cells for k in metrics):
        names = "、".join(f"{s.label}（{k}）" for k, s in metrics.items())
        report.problems.append(RowProblem(0, "", filename, f"没有任何员工指标列，可用：{names}"))
        return report
    records = _Validator(session, actor, metrics).check_all(table.rows, report.problems)
    if records:
        report.first_date = min(r.day for r in records)
        report.last_date = max(r.day for r in records)
        report.staff = len({r.staff_id for r in records})
        report.metrics = [s.label for k, s in metrics.items() if k in table.rows[0].cells]
    if not report.ok or dry_run:
        return report
    with write_transaction(session):
        if is_postgres(session):
            session.execute(sa.text("SELECT pg_advisory_xact_lock(4210002)"))
        report.written = _write(session, records, metrics)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.STAFF_METRICS_IMPORT,
            target_type="file",
            target_id=filename[:64],
            summary=report.summary(),
            after={"rows": report.rows, "staff": report.staff, "values": report.written},
        )
    return report


class _Validator:
    """Checks one row at a time against staff, the org tree, the actor's scope and earlier rows."""

    def __init__(self, session: Session, actor: Actor, metrics: dict[str, MetricSpec]) -> None:
        self.staff = {
            code: (sid, outlet_id)
            for code, sid, outlet_id in session.execute(
                sa.select(Staff.wecom_userid, Staff.id, Staff.outlet_id)
            )
        }
        self.outlets = {
            code: (uid, level, city_id)
            for code, uid, level, city_id in session.execute(
                sa.select(OrgUnit.code, OrgUnit.id, OrgUnit.level, OrgUnit.city_id)
            )
        }
        self.city_of = {uid: city for uid, _level, city in self.outlets.values()}
        self.city_id = (
            actor.city_id if scope_of(actor, Action.IMPORT_METRICS) is Scope.CITY else None
        )
        self.parse_date = partial(parse_date, window=DateWindow.current())
        self.parsers = value_parsers(metrics)
        self.seen: dict[tuple[date, int], int] = {}

    def check_all(self, rows: list[Row], problems: list[RowProblem]) -> list[_Record]:
        records = []
        for row in rows:
            found: list[RowProblem] = []
            record = self.check(row, found)
            problems.extend(found)
            if record is not None and not found:
                records.append(record)
        return records

    def check(self, row: Row, problems: list[RowProblem]) -> _Record | None:
        day = self._cell(row, "date", "日期", self.parse_date, problems)
        code = self._cell(row, "staff_code", "员工编码", parse_staff_code, problems)
        staff = self.staff.get(code) if code else None
        if code and staff is None:
            problems.append(RowProblem(row.line, "员工编码", code, "员工编码不存在"))
        outlet_id = self._outlet(row, staff, problems)
        values = parse_values(row, self.parsers, problems)
        if day is not None and staff is not None:
            first = self.seen.setdefault((day, staff[0]), row.line)
            if first != row.line:
                problems.append(
                    RowProblem(
                        row.line,
                        "日期/员工编码",
                        f"{day} {code}",
                        f"与第 {first} 行重复（同一日期和员工只能出现一次）",
                    )
                )
        if problems or day is None or staff is None or outlet_id is None:
            return None
        return _Record(row.line, day, staff[0], outlet_id, values)

    def _outlet(
        self, row: Row, staff: tuple[int, int] | None, problems: list[RowProblem]
    ) -> int | None:
        raw = row.cells.get("outlet_code")
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            outlet_id = staff[1] if staff else None
        else:
            code = self._cell(
                row, "outlet_code", "网点编码", partial(parse_code, what="网点编码"), problems
            )
            unit = self.outlets.get(code) if code else None
            if code and (unit is None or unit[1] != OrgLevel.OUTLET):
                problems.append(RowProblem(row.line, "网点编码", code, "网点编码不存在"))
                return None
            outlet_id = unit[0] if unit else None
        if (
            outlet_id is not None
            and self.city_id is not None
            and self.city_of.get(outlet_id) != self.city_id
        ):
            problems.append(
                RowProblem(row.line, "网点编码", str(raw or ""), "该网点不在您的管辖范围内")
            )
            return None
        return outlet_id

    @staticmethod
    def _cell(row: Row, key: str, label: str, parse, problems: list[RowProblem]):
        raw = row.cells.get(key)
        try:
            return parse(raw)
        except CellError as exc:
            problems.append(
                RowProblem(row.line, label, "" if raw is None else str(raw)[:40], str(exc))
            )
            return None


def _stints(session: Session, pairs: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Stint id of every (staff, outlet) pair, created where missing."""
    table = StaffStint.__table__
    known = {
        (s, o): i
        for i, s, o in session.execute(sa.select(table.c.id, table.c.staff_id, table.c.outlet_id))
    }
    missing = sorted(pairs - known.keys())
    if missing:
        session.execute(sa.insert(table), [{"staff_id": s, "outlet_id": o} for s, o in missing])
        return _stints(session, set())
    return known


def _write(session: Session, records: list[_Record], metrics: dict[str, MetricSpec]) -> int:
    stints = _stints(session, {(r.staff_id, r.outlet_id) for r in records})
    size = max(stints.values()) + 1
    changed: dict[str, dict[int, date]] = {}

    def mark(key: str, stint: int, day: date) -> None:
        slot = changed.setdefault(key, {})
        slot[stint] = min(day, slot.get(stint, day))

    _move_earlier(session, records, stints, mark)
    rows = []
    for r in records:
        stint = stints[(r.staff_id, r.outlet_id)]
        for key, value in r.values:
            rows.append((key, r.day, r.staff_id, stint, value))
            mark(key, stint, r.day)
    bulk_upsert(
        session,
        "staff_metric_value",
        ("metric_key", "date", "staff_id", "stint_id", "value"),
        ("metric_key", "date", "staff_id"),
        rows,
    )
    days = {r.day for r in records}
    every = all_specs(session)  # a value moved between outlets may be of a retired metric
    for key, first in changed.items():
        series.refresh(session, "staff", key, every[key].kind, first, days, size)
    return len(rows)


def _move_earlier(session: Session, records: list[_Record], stints, mark) -> None:
    """Values already stored for a (date, staff) of the file, at another outlet, move to the
    outlet the file names: one outlet per staff member and day."""
    table = StaffMetricValue.__table__
    wanted = {(r.day, r.staff_id): stints[(r.staff_id, r.outlet_id)] for r in records}
    start, end = min(d for d, _ in wanted), max(d for d, _ in wanted)
    query = sa.select(table.c.metric_key, table.c.date, table.c.staff_id, table.c.stint_id).where(
        table.c.date.between(start, end)
    )
    staff_ids = sorted({s for _, s in wanted})
    if len(staff_ids) <= 500:
        query = query.where(table.c.staff_id.in_(staff_ids))
    for key, day, staff_id, stint in session.execute(query):
        target = wanted.get((day, staff_id))
        if target is None or target == stint:
            continue
        mark(key, stint, day)
        mark(key, target, day)
        session.execute(
            sa.update(table)
            .where(table.c.metric_key == key, table.c.date == day, table.c.staff_id == staff_id)
            .values(stint_id=target)
        )
