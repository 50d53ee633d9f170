"""Daily outlet metrics: the metric definitions, the import, the running totals, and the
period queries every board and summary is built on.

Rules (DESIGN.md): flows are summed over a period; stocks take the value on the last date
≤ period end that has data; an outlet with no rows in a period has 0 for flows and its
last known stock. `MetricCumulative` makes each of these a lookup of two rows per outlet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import partial
from itertools import islice

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session

from core import audit
from core.audit import AuditAction
from core.clock import shanghai_today, utcnow
from core.permissions import Action, Actor, Scope, ensure_allowed, scope_of
from core.tabular import (
    CellError,
    Column,
    Row,
    RowProblem,
    parse_amount_fen,
    parse_code,
    parse_count,
    parse_date,
    read_table,
)
from db.bulk import bulk_insert, bulk_upsert
from db.engine import write_transaction
from db.models import DailyMetric, MetricCumulative, OrgLevel, OrgUnit

ProgressFn = Callable[[float, str], None]


class MetricKind(StrEnum):
    FLOW = "flow"  # summed over the period
    STOCK = "stock"  # last known value at the period end


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    kind: MetricKind
    daily_column: str
    cumulative_column: str
    is_money: bool = False


METRICS: dict[str, MetricSpec] = {
    spec.key: spec
    for spec in (
        MetricSpec("new_friends", "新增好友", MetricKind.FLOW, "new_friends", "cum_new_friends"),
        MetricSpec("total_friends", "好友总数", MetricKind.STOCK, "total_friends", "total_friends"),
        MetricSpec("groups", "客户群数", MetricKind.STOCK, "groups", "groups"),
        MetricSpec("group_members", "群成员数", MetricKind.STOCK, "group_members", "group_members"),
        MetricSpec("conversions", "转化客户", MetricKind.FLOW, "conversions", "cum_conversions"),
        MetricSpec(
            "deposits",
            "新增存款",
            MetricKind.FLOW,
            "deposits_fen",
            "cum_deposits_fen",
            is_money=True,
        ),
    )
}

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
_CUMULATIVE_COLUMNS = (
    "date",
    "outlet_id",
    "cum_new_friends",
    "cum_conversions",
    "cum_deposits_fen",
    "total_friends",
    "groups",
    "group_members",
)
_LABELS = {c.key: c.zh for c in IMPORT_COLUMNS}


def _parse_outlet_code(value: object) -> str:
    return parse_code(value, what="网点编码")


# Parsers of the value columns, in _DAILY_VALUE_COLUMNS order.
_VALUE_PARSERS: list[tuple[str, Callable[[object], int]]] = [
    *((key, partial(parse_count, what=_LABELS[key])) for key in _COUNT_COLUMNS),
    ("deposits", partial(parse_amount_fen, what="新增存款")),
]


# --- import -------------------------------------------------------------------------


@dataclass
class ImportReport:
    filename: str
    dry_run: bool
    rows: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    created: int = 0
    replaced: int = 0
    first_date: date | None = None
    last_date: date | None = None
    outlets: int = 0
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_lines(self) -> int:
        return len({p.line for p in self.problems})

    def summary(self) -> str:
        if not self.ok:
            return f"文件未导入：发现 {len(self.problems)} 处问题（涉及 {self.bad_lines} 行），请修改后重新上传，已有数据未做任何改动。"
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
    table = read_table(data, filename, IMPORT_COLUMNS)
    report.ignored_columns = table.ignored_columns
    report.problems.extend(table.problems)
    report.rows = len(table.rows)
    notify(0.2, f"正在校验 {report.rows} 行…")
    records = _validate_rows(session, actor, table.rows, report.problems)
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
        notify(0.7, "正在更新累计值…")
        refresh_cumulative(session, first_changed, report.last_date)
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
    session: Session, actor: Actor, rows: list[Row], problems: list[RowProblem]
) -> list[_Record]:
    validator = _RowValidator(session, actor)
    records = []
    for row in rows:
        record, row_problems = validator.check(row)
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
        self.today = shanghai_today()
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
            day = self._parse(row, "date", parse_date, problems)
            if isinstance(raw, str) and day is not None:
                self.dates[raw] = day
        if day is not None and day > self.today:
            problems.append(RowProblem(row.line, "日期", str(day), "日期不能晚于今天"))
            return None
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


def _lock_metrics(session: Session) -> None:
    # Imports of the same outlets must not interleave their running-total rebuilds.
    # SQLite already serialises writers (BEGIN IMMEDIATE); PostgreSQL needs a lock.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(4210001)"))


def _chunks(items: list, size: int) -> Iterable[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


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


# --- running totals ---------------------------------------------------------------------


def latest_date(session: Session) -> date | None:
    """The newest date any outlet reported (the horizon of the running totals)."""
    return session.execute(sa.select(sa.func.max(MetricCumulative.date))).scalar_one()


def refresh_cumulative(session: Session, first_changed: dict[int, date], last_date: date) -> None:
    """Bring `metric_cumulative` in step after daily rows changed.

    `first_changed` maps each outlet whose daily rows changed to its earliest changed date.
    Every outlet gets rows up to the (possibly new) horizon; changed outlets are rebuilt
    from their first changed date, so re-importing an old day stays exact.
    """
    old_horizon = latest_date(session)
    horizon = max(old_horizon, last_date) if old_horizon else last_date
    if old_horizon and horizon > old_horizon:
        _carry_forward(session, old_horizon, horizon)
    by_start: dict[date, list[int]] = defaultdict(list)
    for outlet_id, start in first_changed.items():
        by_start[start].append(outlet_id)
    cum = MetricCumulative.__table__
    daily = DailyMetric.__table__
    for start, outlet_ids in by_start.items():
        for ids in _chunks(sorted(outlet_ids), 2000):
            session.execute(sa.delete(cum).where(cum.c.outlet_id.in_(ids), cum.c.date >= start))
            base = {
                row.outlet_id: row
                for row in session.execute(
                    sa.select(cum).where(
                        cum.c.outlet_id.in_(ids), cum.c.date == start - timedelta(days=1)
                    )
                )
            }
            raw = session.execute(
                sa.select(
                    daily.c.outlet_id, daily.c.date, *(daily.c[c] for c in _DAILY_VALUE_COLUMNS)
                )
                .where(daily.c.outlet_id.in_(ids), daily.c.date >= start)
                .order_by(daily.c.outlet_id, daily.c.date)
            ).all()
            bulk_insert(
                session,
                "metric_cumulative",
                _CUMULATIVE_COLUMNS,
                _dense_rows(raw, base, start, horizon),
            )


def _carry_forward(session: Session, old_horizon: date, horizon: date) -> None:
    """Extend every outlet's running totals from the old horizon to the new one unchanged."""
    cum = MetricCumulative.__table__
    value_columns = [c for c in _CUMULATIVE_COLUMNS if c not in ("date", "outlet_id")]
    day = old_horizon + timedelta(days=1)
    while day <= horizon:
        source = sa.select(
            sa.literal(day, sa.Date).label("date"),
            cum.c.outlet_id,
            *(cum.c[c] for c in value_columns),
        ).where(cum.c.date == old_horizon)
        session.execute(sa.insert(cum).from_select(["date", "outlet_id", *value_columns], source))
        day += timedelta(days=1)


def _dense_rows(raw: list, base: dict, start: date, horizon: date) -> Iterable[tuple]:
    """One running-total row per outlet per day from `start` (or its first report) to the horizon."""
    by_outlet: dict[int, list] = defaultdict(list)
    for row in raw:
        by_outlet[row[0]].append(row)
    for outlet_id, rows in by_outlet.items():
        prior = base.get(outlet_id)
        if prior is not None:
            friends, conversions, deposits = (
                prior.cum_new_friends,
                prior.cum_conversions,
                prior.cum_deposits_fen,
            )
            stocks = (prior.total_friends, prior.groups, prior.group_members)
            day = start
        else:
            friends = conversions = deposits = 0
            stocks = (0, 0, 0)
            day = rows[0][1]
        reported = {r[1]: r for r in rows}
        while day <= horizon:
            r = reported.get(day)
            if r is not None:
                _, _, new_friends, total_friends, groups, group_members, conv, fen = r
                friends += new_friends
                conversions += conv
                deposits += fen
                stocks = (total_friends, groups, group_members)
            yield (day, outlet_id, friends, conversions, deposits, *stocks)
            day += timedelta(days=1)


# --- period queries -----------------------------------------------------------------------


def period_values(start: date, end: date, horizon: date | None) -> sa.Subquery:
    """Per outlet: the six metric values over [start, end] (flows summed, stocks at end).

    Only outlets that had reported by the period end appear; callers outer-join the org
    tree when outlets that never reported must show as zero.
    """
    at_end = aliased(MetricCumulative, name="at_end")
    before = aliased(MetricCumulative, name="before_start")
    end_day = min(end, horizon) if horizon else end
    before_day = min(start - timedelta(days=1), end_day)
    columns = [at_end.outlet_id.label("outlet_id")]
    for spec in METRICS.values():
        end_value = getattr(at_end, spec.cumulative_column)
        if spec.kind is MetricKind.FLOW:
            value = end_value - sa.func.coalesce(getattr(before, spec.cumulative_column), 0)
        else:
            value = end_value
        columns.append(value.label(spec.key))
    return (
        sa.select(*columns)
        .select_from(at_end)
        .outerjoin(before, sa.and_(before.outlet_id == at_end.outlet_id, before.date == before_day))
        .where(at_end.date == end_day)
        .subquery("period_values")
    )


@dataclass(frozen=True)
class Totals:
    """Sums over a set of outlets; money in fen."""

    values: dict[str, int]
    outlets_reporting: int

    def __getitem__(self, key: str) -> int:
        return self.values[key]


def totals(
    session: Session, *, outlet_filter: sa.ColumnElement[bool], start: date, end: date
) -> Totals:
    """Totals of the six metrics over the outlets matching `outlet_filter` (on OrgUnit)."""
    horizon = latest_date(session)
    values = {key: 0 for key in METRICS}
    if horizon is None:
        return Totals(values, 0)
    pv = period_values(start, end, horizon)
    query = (
        sa.select(sa.func.count(), *(sa.func.coalesce(sa.func.sum(pv.c[k]), 0) for k in METRICS))
        .select_from(pv)
        .join(OrgUnit, OrgUnit.id == pv.c.outlet_id)
        .where(outlet_filter)
    )
    count, *sums = session.execute(query).one()
    return Totals(dict(zip(METRICS, (int(s) for s in sums), strict=True)), int(count))


@dataclass(frozen=True)
class DailyPoint:
    day: date
    new_friends: int
    conversions: int
    deposits_fen: int
    outlets_reporting: int


def daily_series(
    session: Session, *, outlet_filter: sa.ColumnElement[bool], start: date, end: date
) -> list[DailyPoint]:
    """Daily sums of the flow metrics over matching outlets, one point per day with data."""
    d = DailyMetric.__table__
    query = (
        sa.select(
            d.c.date,
            sa.func.sum(d.c.new_friends),
            sa.func.sum(d.c.conversions),
            sa.func.sum(d.c.deposits_fen),
            sa.func.count(),
        )
        .select_from(d)
        .join(OrgUnit, OrgUnit.id == d.c.outlet_id)
        .where(d.c.date.between(start, end), outlet_filter)
        .group_by(d.c.date)
        .order_by(d.c.date)
    )
    return [
        DailyPoint(day, int(nf), int(cv), int(dep), int(n))
        for day, nf, cv, dep, n in session.execute(query)
    ]


def silent_outlets(
    session: Session, *, outlet_filter: sa.ColumnElement[bool], day: date
) -> list[tuple[str, str]]:
    """(code, name) of active outlets in the filter that sent no row for `day`."""
    d = DailyMetric.__table__
    reported = sa.select(d.c.outlet_id).where(d.c.date == day)
    query = (
        sa.select(OrgUnit.code, OrgUnit.name)
        .where(OrgUnit.level == OrgLevel.OUTLET, outlet_filter, OrgUnit.id.not_in(reported))
        .order_by(OrgUnit.code)
    )
    return [(code, name) for code, name in session.execute(query)]
