"""Importing daily outlet metrics (网点日报) from CSV/XLSX: validate every cell (dates inside
the import window, `cells.DateWindow`), then write the whole file or nothing, and bring
the running-total snapshots in step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial

import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import series, snapshots
from core.metrics.registry import Level
from core.metrics.registry_columns import (
    extra_columns,
    parse_values,
    registry_extras,
    value_parsers,
)
from core.metrics.values import MetricSpec
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.cells import (
    CellError,
    DateWindow,
    parse_amount_fen,
    parse_code,
    parse_count,
    parse_date,
)
from core.platform.clock import utcnow
from core.platform.directory import outlet_directory
from core.platform.permissions import Action, Actor, Scope, ensure_allowed, scope_of
from core.platform.tabular import Column, FileReport, Row, RowProblem, read_table
from db.bulk import bulk_upsert
from db.engine import is_postgres, write_transaction
from db.models import DailyMetric, OrgLevel, OrgUnit

ProgressFn = Callable[[float, str], None]

IMPORT_COLUMNS = (
    Column("date", "日期"),
    Column("outlet_code", "网点编码"),
    Column("new_friends", "新增好友"),
    Column("total_friends", "好友总数"),
    Column("groups", "客户群数"),
    Column("group_members", "群成员数"),
    Column("conversions", "转化客户"),
    Column("deposits", "新增存款(元)", aliases=("新增存款", "新增余额", "新增余额(元)")),
)
_COUNT_COLUMNS = ("new_friends", "total_friends", "groups", "group_members", "conversions")
_DAILY_VALUE_COLUMNS = (*_COUNT_COLUMNS, "deposits_fen")
_LABELS = {c.key: c.zh for c in IMPORT_COLUMNS}


def _parse_outlet_code(value: object) -> str:
    return parse_code(value, what="网点编码")


# Parsers of the value columns, in _DAILY_VALUE_COLUMNS order.
_VALUE_PARSERS: list[tuple[str, Callable[[object], int]]] = [
    *((key, partial(parse_count, what=_LABELS[key])) for key in _COUNT_COLUMNS),
    ("deposits", partial(parse_amount_fen, what="新增存款")),
]


@dataclass
class ImportReport(FileReport):
    created: int = 0
    replaced: int = 0
    first_date: date | None = None
    last_date: date | None = None
    outlets: int = 0
    ignored_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.ok:
            return self.refusal(detail=f"（涉及 {self.bad_lines} 行）")
        span = f"{self.first_date} 至 {self.last_date}" if self.first_date else ""
        if self.dry_run:
            return f"校验通过（未写入）：{self.rows} 行，{self.outlets} 个网点，{span}。"
        return f"导入成功：{self.rows} 行（新增 {self.created}，覆盖 {self.replaced}），{self.outlets} 个网点，{span}。"


@dataclass(frozen=True)
class _Record:
    line: int
    day: date
    outlet_id: int
    values: tuple[int, ...]  # in _DAILY_VALUE_COLUMNS order
    extras: tuple[tuple[str, int], ...] = ()  # non-builtin registry metrics present in the row


def import_metrics(
    session: Session,
    *,
    actor: Actor,
    data: bytes,
    filename: str,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Validate the whole file; write it only when every row is valid (all or nothing)."""
    ensure_allowed(actor, Action.IMPORT_METRICS)
    notify = progress or (lambda _f, _t: None)
    report = ImportReport(filename=filename, dry_run=dry_run)
    notify(0.05, "正在读取文件…")
    extra_specs = registry_extras(session, Level.OUTLET)
    table = read_table(data, filename, (*IMPORT_COLUMNS, *extra_columns(extra_specs)))
    report.ignored_columns = table.ignored_columns
    report.problems.extend(table.problems)
    report.rows = len(table.rows)
    notify(0.2, f"正在校验 {report.rows} 行…")
    records = _validate_rows(session, actor, table.rows, report.problems, extra_specs)
    if records:
        report.first_date = min(r.day for r in records)
        report.last_date = max(r.day for r in records)
        report.outlets = len({r.outlet_id for r in records})
    if not report.ok or dry_run:
        notify(1.0, "校验完成")
        return report
    notify(0.45, "正在写入…")
    with write_transaction(session):
        _lock_metrics(session)
        report.created, report.replaced = _upsert_daily(session, records)
        first_changed: dict[int, date] = {}
        for r in records:
            if r.outlet_id not in first_changed or r.day < first_changed[r.outlet_id]:
                first_changed[r.outlet_id] = r.day
        notify(0.7, "正在更新排名快照…")
        days = {r.day for r in records}
        size = outlet_directory(session).size
        snapshots.refresh(session, first_changed, days, size)
        _write_extras(session, records, extra_specs, size)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.METRICS_IMPORT,
            target_type="file",
            target_id=filename[:64],
            summary=report.summary(),
            after={
                "rows": report.rows,
                "created": report.created,
                "replaced": report.replaced,
                "first_date": str(report.first_date),
                "last_date": str(report.last_date),
                "outlets": report.outlets,
            },
        )
    notify(1.0, "导入完成")
    return report


def _validate_rows(
    session: Session,
    actor: Actor,
    rows: list[Row],
    problems: list[RowProblem],
    extra_specs: dict[str, MetricSpec],
) -> list[_Record]:
    validator = _RowValidator(session, actor)
    extra_parsers = value_parsers(extra_specs)
    records = []
    for row in rows:
        record, row_problems = validator.check(row)
        extras = parse_values(row, extra_parsers, row_problems)
        if record is not None and extras:
            record = replace(record, extras=extras)
        if row_problems:
            problems.extend(row_problems)
        elif record is not None:
            records.append(record)
    return records


class _RowValidator:
    """Checks one row at a time against the org tree, the actor's scope and earlier rows."""

    def __init__(self, session: Session, actor: Actor) -> None:
        self.units = {
            code: (uid, level, city_id)
            for code, uid, level, city_id in session.execute(
                sa.select(OrgUnit.code, OrgUnit.id, OrgUnit.level, OrgUnit.city_id)
            )
        }
        self.city_id = (
            actor.city_id if scope_of(actor, Action.IMPORT_METRICS) is Scope.CITY else None
        )
        self.parse_date = partial(parse_date, window=DateWindow.current())
        self.seen: dict[tuple[date, int], int] = {}
        self.dates: dict[str, date] = {}  # files repeat a handful of dates: parse each once

    def check(self, row: Row) -> tuple[_Record | None, list[RowProblem]]:
        problems: list[RowProblem] = []
        cells = row.cells
        day = self._date(row, problems)
        code = self._parse(row, "outlet_code", _parse_outlet_code, problems)
        outlet_id = self._outlet(row.line, code, problems) if code is not None else None
        values = [self._parse(row, key, parse, problems) for key, parse in _VALUE_PARSERS]
        if day is not None and outlet_id is not None:
            first_line = self.seen.setdefault((day, outlet_id), row.line)
            if first_line != row.line:
                problems.append(
                    RowProblem(
                        row.line,
                        "日期/网点编码",
                        f"{day} {cells.get('outlet_code')}",
                        f"与第 {first_line} 行重复（同一日期和网点只能出现一次）",
                    )
                )
        if problems:
            return None, problems
        return _Record(row.line, day, outlet_id, tuple(values)), []

    @staticmethod
    def _parse(
        row: Row, key: str, parse: Callable[[object], object], problems: list[RowProblem]
    ) -> object:
        raw = row.cells.get(key)
        try:
            return parse(raw)
        except CellError as exc:
            problems.append(RowProblem(row.line, _LABELS[key], _show(raw), str(exc)))
            return None

    def _date(self, row: Row, problems: list[RowProblem]) -> date | None:
        raw = row.cells.get("date")
        day = self.dates.get(raw) if isinstance(raw, str) else None
        if day is None:
            day = self._parse(row, "date", self.parse_date, problems)
            if isinstance(raw, str) and day is not None:
                self.dates[raw] = day
        return day

    def _outlet(self, line: int, code: str, problems: list[RowProblem]) -> int | None:
        unit = self.units.get(code)
        if unit is None:
            problems.append(RowProblem(line, "网点编码", code, "网点编码不存在"))
        elif unit[1] != OrgLevel.OUTLET:
            problems.append(
                RowProblem(line, "网点编码", code, f"该编码是{OrgLevel(unit[1]).label}，不是网点")
            )
        elif self.city_id is not None and unit[2] != self.city_id:
            problems.append(RowProblem(line, "网点编码", code, "该网点不在您的管辖范围内"))
        else:
            return unit[0]
        return None


def _show(value: object) -> str:
    return "" if value is None else str(value)[:40]


def _write_extras(
    session: Session, records: list[_Record], extra_specs: dict[str, MetricSpec], size: int
) -> None:
    """Registry metrics beyond the builtin six: long rows and their own snapshots."""
    by_key: dict[str, list[tuple[date, int, int]]] = {}
    for r in records:
        for key, value in r.extras:
            by_key.setdefault(key, []).append((r.day, r.outlet_id, value))
    for key, rows in by_key.items():
        bulk_upsert(
            session,
            "outlet_metric_value",
            ("metric_key", "date", "outlet_id", "value"),
            ("metric_key", "date", "outlet_id"),
            ((key, *row) for row in rows),
        )
        first: dict[int, date] = {}
        for day, outlet_id, _ in rows:
            first[outlet_id] = min(day, first.get(outlet_id, day))
        series.refresh(
            session, "outlet", key, extra_specs[key].kind, first, {r[0] for r in rows}, size
        )


def _lock_metrics(session: Session) -> None:
    # Imports of the same outlets must not interleave their running-total rebuilds.
    # SQLite already serialises writers (BEGIN IMMEDIATE); PostgreSQL needs a lock.
    if is_postgres(session):
        session.execute(sa.text("SELECT pg_advisory_xact_lock(4210001)"))


def _upsert_daily(session: Session, records: list[_Record]) -> tuple[int, int]:
    """Insert or replace by (date, outlet); returns (created, replaced)."""
    table = DailyMetric.__table__
    days = sorted({r.day for r in records})
    count = sa.select(sa.func.count()).select_from(table).where(table.c.date.in_(days))
    before = session.execute(count).scalar_one()
    now = utcnow()
    bulk_upsert(
        session,
        "daily_metric",
        ("date", "outlet_id", *_DAILY_VALUE_COLUMNS, "imported_at"),
        ("date", "outlet_id"),
        ((r.day, r.outlet_id, *r.values, now) for r in records),
    )
    created = session.execute(count).scalar_one() - before
    return created, len(records) - created
