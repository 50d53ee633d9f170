"""Channel events in and out: importing them from CSV (customer ids hashed on the way in,
times inside the import window), and the funnel scan → friend → group → conversion by
channel type, code, outlet or staff."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, select

from core.channels.codes import code_scope
from core.channels.events import NewEvent, add_events, hash_customer
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.cells import CellError, DateWindow, parse_text
from core.platform.clock import SHANGHAI
from core.platform.permissions import Action, Actor, Scope, ensure_allowed, scope_of
from core.platform.tabular import Column, FileReport, RowProblem, read_table
from db.engine import write_transaction
from db.models import CHANNEL_TYPE_LABELS, ChannelCode, ChannelEvent, EventType, OrgUnit, Staff

EVENT_WORDS = {
    **{e.value: e for e in EventType},
    **{e.label: e for e in EventType},
    "添加好友": EventType.ADD_FRIEND,
    "入群": EventType.JOIN_GROUP,
}
IMPORT_COLUMNS = (
    Column("time", "时间"),
    Column("code", "活码", aliases=("code_slug", "活码编号")),
    Column("customer", "客户ID", aliases=("customer_id", "external_userid")),
    Column("event", "事件", aliases=("event_type",)),
    Column("staff", "员工企微ID", aliases=("staff_userid",), required=False),
)
STAGES = (EventType.SCAN, EventType.ADD_FRIEND, EventType.JOIN_GROUP, EventType.CONVERT)
COUNTED = (*STAGES, EventType.LOSS)  # losses (WeCom callbacks) are shown beside the stages
# The rate shown for each stage, the same on the cards and in the table: a friend is counted
# against the scans, a group join and a conversion against the friends (a customer may
# convert without joining a group, so 进群→转化 would mislead).
STAGE_BASE = {
    EventType.ADD_FRIEND: EventType.SCAN,
    EventType.JOIN_GROUP: EventType.ADD_FRIEND,
    EventType.CONVERT: EventType.ADD_FRIEND,
}
STAGE_UNITS = {
    EventType.SCAN: "次",
    EventType.ADD_FRIEND: "人",
    EventType.JOIN_GROUP: "人",
    EventType.CONVERT: "人",
    EventType.LOSS: "人",
}


def rate_label(stage: EventType) -> str:
    """ "加好友→转化": the name of a stage's rate (cards, table headers and exports)."""
    return f"{STAGE_BASE[stage].label}→{stage.label}"


def _parse_time(value: object, window: DateWindow) -> datetime:
    """A timestamp (Shanghai unless it says otherwise) inside the import window."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value or "").strip().replace("/", "-").replace("T", " ")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise CellError(f"无法识别的时间：{text}（应为 2026-11-08 10:30:00）") from exc
    return window.check_moment(moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI))


@dataclass
class EventImportReport(FileReport):
    created: int = 0
    duplicates: int = 0

    def summary(self) -> str:
        if not self.ok:
            return self.refusal()
        return f"导入成功：{self.created} 条事件（另有 {self.duplicates} 条已导入过，已跳过）。客户ID 已加密存储。"


def import_events(
    session: Session, *, actor: Actor, data: bytes, filename: str
) -> EventImportReport:
    ensure_allowed(actor, Action.MANAGE_CHANNEL_CODES)
    table = read_table(data, filename, IMPORT_COLUMNS)
    report = EventImportReport(filename, rows=len(table.rows), problems=list(table.problems))
    named = {str(row.cells.get("code") or "").strip() for row in table.rows}
    codes = {
        c.slug: c for c in session.exec(select(ChannelCode).where(ChannelCode.slug.in_(named)))
    }
    userids = {str(row.cells.get("staff") or "").strip() for row in table.rows} - {""}
    staff = {
        userid: (staff_id, city_id)
        for userid, staff_id, city_id in session.exec(
            select(Staff.wecom_userid, Staff.id, OrgUnit.city_id)
            .join(OrgUnit, OrgUnit.id == Staff.outlet_id)
            .where(Staff.wecom_userid.in_(userids))
        )
    }
    city_only = scope_of(actor, Action.MANAGE_CHANNEL_CODES) is Scope.CITY
    window = DateWindow.current()
    parsed = []
    for row in table.rows:
        try:
            moment = _parse_time(row.cells.get("time"), window)
            slug = parse_text(row.cells.get("code"), max_len=16, what="活码")
            code = codes.get(slug)
            if code is None:
                raise CellError(f"活码 {slug} 不存在")
            if city_only and code.city_id != actor.city_id:
                raise CellError(f"活码 {slug} 不属于本市")
            customer = parse_text(row.cells.get("customer"), max_len=64, what="客户ID")
            event = EVENT_WORDS.get(str(row.cells.get("event") or "").strip())
            if event is None:
                raise CellError(
                    "事件须为 scan/add_friend/join_group/convert 或 扫码/加好友/进群/转化"
                )
            staff_userid = parse_text(row.cells.get("staff"), required=False, max_len=64)
            if staff_userid and staff_userid not in staff:
                raise CellError(f"员工企微ID {staff_userid} 不存在")
            if staff_userid and staff[staff_userid][1] != code.city_id:
                raise CellError(f"员工企微ID {staff_userid} 不是活码 {slug} 所在市的员工")
        except CellError as exc:
            report.problems.append(RowProblem(row.line, "", "", str(exc)))
            continue
        parsed.append(
            NewEvent(
                code,
                moment,
                event,
                hash_customer(customer),
                staff[staff_userid][0] if staff_userid else None,
            )
        )
    if not report.ok:
        return report
    with write_transaction(session):
        report.created = add_events(session, parsed, "import")
        report.duplicates = len(parsed) - report.created
        audit.record(
            session,
            actor=actor,
            action=AuditAction.EVENTS_IMPORT,
            target_type="file",
            target_id=filename[:64],
            summary=report.summary(),
        )
    return report


class GroupBy(StrEnum):
    CHANNEL_TYPE = "channel_type"
    CODE = "code"
    OUTLET = "outlet"
    STAFF = "staff"

    @property
    def label(self) -> str:
        return {"channel_type": "渠道类型", "code": "活码", "outlet": "网点", "staff": "员工"}[
            self.value
        ]


@dataclass(frozen=True)
class FunnelRow:
    key: str
    counts: dict[EventType, int]

    def rate(self, to: EventType, base: EventType) -> float | None:
        return self.counts[to] / self.counts[base] if self.counts[base] else None

    def stage_rate(self, stage: EventType) -> float | None:
        """The stage's rate by STAGE_BASE (None for the first stage or an empty base)."""
        return self.rate(stage, STAGE_BASE[stage]) if stage in STAGE_BASE else None


def funnel_total(rows: list[FunnelRow]) -> FunnelRow:
    """All rows added up (the page's headline numbers and the funnel chart)."""
    return FunnelRow("合计", {stage: sum(r.counts[stage] for r in rows) for stage in COUNTED})


def _scoped_codes(actor: Actor) -> sa.Select:
    return sa.select(ChannelCode.id).where(code_scope(actor, Action.VIEW_CHANNEL_STATS))


def funnel(
    session: Session,
    *,
    actor: Actor,
    start: date,
    end: date,
    group_by: GroupBy,
    campaign_id: int | None = None,
) -> list[FunnelRow]:
    """Event counts per stage for each group over [start, end] (Shanghai days)."""
    ensure_allowed(actor, Action.VIEW_CHANNEL_STATS)
    key = {
        GroupBy.CHANNEL_TYPE: ChannelCode.channel_type,
        GroupBy.CODE: ChannelCode.name,
        GroupBy.OUTLET: OrgUnit.name,
        GroupBy.STAFF: sa.func.coalesce(Staff.name, "未分配"),
    }[group_by]
    query = (
        sa.select(key, ChannelEvent.event_type, sa.func.count())
        .select_from(ChannelEvent)
        .join(ChannelCode, ChannelCode.id == ChannelEvent.code_id)
        .join(OrgUnit, OrgUnit.id == ChannelCode.outlet_id)
        .outerjoin(Staff, Staff.id == ChannelEvent.staff_id)
        .where(ChannelEvent.code_id.in_(_scoped_codes(actor)), *_window(start, end))
        .group_by(key, ChannelEvent.event_type)
    )
    if campaign_id:
        query = query.where(ChannelCode.campaign_id == campaign_id)
    counts: dict[str, dict[EventType, int]] = defaultdict(lambda: dict.fromkeys(COUNTED, 0))
    for group, event, count in session.execute(query):
        label = CHANNEL_TYPE_LABELS[group] if group_by is GroupBy.CHANNEL_TYPE else str(group)
        counts[label][EventType(event)] += count
    rows = [FunnelRow(k, v) for k, v in counts.items()]
    return sorted(rows, key=lambda r: -r.counts[EventType.SCAN])


def daily(
    session: Session, *, actor: Actor, start: date, end: date
) -> list[tuple[date, EventType, int]]:
    """Events per Shanghai day and stage (the chart over time), counted in the database: a
    month of events is tens of thousands of rows, too many to fetch for a chart."""
    ensure_allowed(actor, Action.VIEW_CHANNEL_STATS)
    day = _shanghai_day(session)
    rows = session.execute(
        sa.select(day, ChannelEvent.event_type, sa.func.count())
        .where(ChannelEvent.code_id.in_(_scoped_codes(actor)), *_window(start, end))
        .group_by(day, ChannelEvent.event_type)
    )
    tally: dict[tuple[date, EventType], int] = defaultdict(int)
    for moment, event, count in rows:
        when = moment if isinstance(moment, date) else date.fromisoformat(moment)
        tally[(when, EventType(event))] += count
    return sorted((d, e, n) for (d, e), n in tally.items())


def _shanghai_day(session: Session) -> sa.ColumnElement:
    """The Shanghai calendar day of an event's UTC time (UTC+8 all year, no daylight saving)."""
    if session.get_bind().dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("Asia/Shanghai", ChannelEvent.at), sa.Date)
    return sa.func.date(ChannelEvent.at, "+8 hours")  # SQLite keeps UTC as ISO text


def _window(start: date, end: date) -> list[sa.ColumnElement[bool]]:
    begin = datetime.combine(start, time(0), tzinfo=SHANGHAI)
    finish = datetime.combine(end + timedelta(days=1), time(0), tzinfo=SHANGHAI)
    return [ChannelEvent.at >= begin, ChannelEvent.at < finish]
