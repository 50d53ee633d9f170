"""Per-outlet targets (网点目标) for a period or for one campaign's days, imported from
CSV/XLSX like every file: all or nothing, every bad line named, a re-import replacing
by (period or campaign, outlet, metric). The boards take their completion rates from
these when present (`period_targets`; a campaign's are read by campaigns.targets),
instead of the campaign KPI spread evenly over its outlets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.cells import (
    CellError,
    DateWindow,
    parse_amount_fen,
    parse_code,
    parse_count,
    parse_date,
    parse_text,
)
from core.platform.clock import utcnow
from core.platform.permissions import Action, Actor, Scope, ensure_allowed, scope_of
from core.platform.tabular import Column, FileReport, Row, RowProblem, read_table
from db.bulk import bulk_upsert
from db.engine import write_transaction
from db.models import Campaign, OrgLevel, OrgUnit, OutletTarget, PlanState

# Targets are set ahead: a period may end up to a year from today.
PLANNING_HORIZON_DAYS = 366
TARGET_METRICS = {
    "new_friends": "新增好友",
    "conversions": "转化客户",
    "deposits": "新增存款",
}
_METRIC_WORDS = {
    **{k: k for k in TARGET_METRICS},
    **{v: k for k, v in TARGET_METRICS.items()},
    "新增存款(元)": "deposits",
    "新增余额": "deposits",
}
IMPORT_COLUMNS = (
    Column("outlet_code", "网点编码"),
    Column("metric", "指标"),
    Column("target", "目标值", aliases=("目标", "target_value")),
    Column("campaign_id", "活动编号", aliases=("campaign",), required=False),
    Column("start_date", "开始日期", aliases=("start",), required=False),
    Column("end_date", "结束日期", aliases=("end",), required=False),
)
_LABELS = {c.key: c.zh for c in IMPORT_COLUMNS}


def campaign_key(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def period_key(start: date, end: date) -> str:
    return f"{start.isoformat()}/{end.isoformat()}"


@dataclass
class TargetImportReport(FileReport):
    created: int = 0
    replaced: int = 0
    ignored_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.ok:
            return self.refusal(kept="目标", detail=f"（涉及 {self.bad_lines} 行）")
        if self.dry_run:
            return f"校验通过（未写入）：{self.rows} 条网点目标。"
        return f"导入成功：{self.rows} 条网点目标（新增 {self.created}，覆盖 {self.replaced}）。"


@dataclass(frozen=True)
class _Target:
    key: str
    outlet_id: int
    metric: str
    campaign_id: int | None
    start: date
    end: date
    value: int


def import_targets(
    session: Session,
    *,
    actor: Actor,
    data: bytes,
    filename: str,
    dry_run: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> TargetImportReport:
    """Validate the whole file; write it only when every row is valid (all or nothing)."""
    ensure_allowed(actor, Action.IMPORT_TARGETS)
    table = read_table(data, filename, IMPORT_COLUMNS)
    report = TargetImportReport(filename=filename, dry_run=dry_run, rows=len(table.rows))
    report.problems.extend(table.problems)
    report.ignored_columns = table.ignored_columns
    checker = _Checker(session, actor)
    targets = [t for row in table.rows if (t := checker.check(row, report.problems))]
    if not report.ok or dry_run:
        return report
    with write_transaction(session):
        count = sa.select(sa.func.count()).select_from(OutletTarget)
        before = session.execute(count).scalar_one()
        now = utcnow()
        bulk_upsert(
            session,
            "outlet_target",
            (
                "period_key",
                "outlet_id",
                "metric",
                "campaign_id",
                "start_date",
                "end_date",
                "target",
                "imported_at",
            ),
            ("period_key", "outlet_id", "metric"),
            (
                (t.key, t.outlet_id, t.metric, t.campaign_id, t.start, t.end, t.value, now)
                for t in targets
            ),
        )
        report.created = session.execute(count).scalar_one() - before
        report.replaced = report.rows - report.created
        audit.record(
            session,
            actor=actor,
            action=AuditAction.TARGETS_IMPORT,
            target_type="file",
            target_id=filename[:64],
            summary=report.summary(),
            after={"rows": report.rows, "created": report.created},
        )
    return report


class _Checker:
    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.city_id = (
            actor.city_id if scope_of(actor, Action.IMPORT_TARGETS) is Scope.CITY else None
        )
        self.units = {
            code: (uid, level, city)
            for code, uid, level, city in session.execute(
                sa.select(OrgUnit.code, OrgUnit.id, OrgUnit.level, OrgUnit.city_id)
            )
        }
        current = DateWindow.current()
        self.window = DateWindow(
            current.earliest, current.now + timedelta(days=PLANNING_HORIZON_DAYS)
        )
        self.campaigns: dict[int, Campaign | None] = {}
        self.seen: dict[tuple[str, int, str], int] = {}

    def check(self, row: Row, problems: list[RowProblem]) -> _Target | None:
        found = len(problems)

        def parse(key: str, fn: Callable[[object], object]) -> object:
            raw = row.cells.get(key)
            try:
                return fn(raw)
            except CellError as exc:
                problems.append(RowProblem(row.line, _LABELS[key], _show(raw), str(exc)))
                return None

        unit = self._outlet(row, parse("outlet_code", parse_code), problems)
        metric = parse("metric", _metric)
        value = parse("target", _amount if metric == "deposits" else _count)
        key, campaign_id, start, end = self._period(row, parse, problems, unit)
        if len(problems) > found or unit is None:
            return None
        first = self.seen.setdefault((key, unit[0], metric), row.line)
        if first != row.line:
            problems.append(
                RowProblem(
                    row.line,
                    "网点编码/指标",
                    _show(row.cells.get("outlet_code")),
                    f"与第 {first} 行重复（同一期间、网点和指标只能出现一次）",
                )
            )
            return None
        return _Target(key, unit[0], metric, campaign_id, start, end, value)

    def _outlet(
        self, row: Row, code: object, problems: list[RowProblem]
    ) -> tuple[int, str, int] | None:
        if code is None:
            return None
        unit = self.units.get(code)
        reason = ""
        if unit is None:
            reason = "网点编码不存在"
        elif unit[1] != OrgLevel.OUTLET:
            reason = "该编码不是网点"
        elif self.city_id is not None and unit[2] != self.city_id:
            reason = "该网点不在您的管辖范围内"
        if reason:
            problems.append(RowProblem(row.line, "网点编码", str(code), reason))
            return None
        return unit

    def _period(self, row, parse, problems, unit) -> tuple[str, int | None, date, date]:
        raw_campaign = parse_text(row.cells.get("campaign_id"), required=False, max_len=20)
        if raw_campaign:
            campaign = self._campaign(raw_campaign)
            reason = ""
            if campaign is None:
                reason = "活动不存在"
            elif campaign.state is PlanState.REJECTED:
                reason = f"活动状态为「{campaign.state.label}」，不能设置目标"
            elif self.city_id is not None and campaign.city_id != self.city_id:
                reason = "该活动不在您的管辖范围内"
            elif unit is not None and unit[2] != campaign.city_id:
                reason = "该网点不属于活动所在的市州"
            if reason:
                problems.append(RowProblem(row.line, "活动编号", raw_campaign, reason))
                return "", None, date.min, date.min
            return (
                campaign_key(campaign.id),
                campaign.id,
                campaign.start_date,
                campaign.end_date,
            )
        start = parse("start_date", lambda v: parse_date(v, self.window))
        end = parse("end_date", lambda v: parse_date(v, self.window))
        if start is not None and end is not None and end < start:
            problems.append(RowProblem(row.line, "结束日期", str(end), "结束日期不能早于开始日期"))
        if start is None or end is None or end < start:
            return "", None, date.min, date.min
        return period_key(start, end), None, start, end

    def _campaign(self, text: str) -> Campaign | None:
        if not text.isdigit():
            return None
        cid = int(text)
        if cid not in self.campaigns:
            self.campaigns[cid] = self.session.get(Campaign, cid)
        return self.campaigns[cid]


def _metric(value: object) -> str:
    text = parse_text(value, what="指标").lower()
    metric = _METRIC_WORDS.get(text)
    if metric is None:
        raise CellError(
            "指标应为 新增好友、转化客户 或 新增存款（new_friends/conversions/deposits）"
        )
    return metric


def _count(value: object) -> int:
    return parse_count(value, what="目标值")


def _amount(value: object) -> int:
    fen = parse_amount_fen(value, what="目标值")
    if fen < 0:
        raise CellError("目标值不能为负数")
    return fen


def _show(value: object) -> str:
    return "" if value is None else str(value)[:40]


def period_targets(session: Session, *, start: date, end: date, metric: str) -> dict[int, int]:
    """Imported targets of exactly this period for `metric`: outlet id → target."""
    rows = session.execute(
        sa.select(OutletTarget.outlet_id, OutletTarget.target).where(
            OutletTarget.period_key == period_key(start, end), OutletTarget.metric == metric
        )
    )
    return {oid: int(target) for oid, target in rows}
