"""Importing coupon events (权益券事件) from the coupon and payment systems: issued, claimed,
redeemed, expired. Every row is checked against the campaign it names (its coupon lines,
its city's outlets and merchants, its window plus a grace period) and the shared import
window; the file is written whole or not at all, idempotently by event id.

A coupon file can hold a million rows, more than the rows of a table fit in memory: the
reader streams them (`tabular.stream_table`), validated rows are spooled to a temporary
file in batches, and only a clean file is loaded, in one transaction.
"""

from __future__ import annotations

import pickle
import re
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import IO

import sqlalchemy as sa
from sqlmodel import Session

from core.campaigns.budget import COMMITTED_STATES
from core.campaigns.design import CampaignDesign
from core.channels.events import hash_customer
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.cells import CellError, DateWindow, parse_amount_fen, parse_text
from core.platform.clock import SHANGHAI, utcnow
from core.platform.permissions import Action, Actor, Scope, ensure_allowed, scope_of
from core.platform.read_limits import MB, ReadLimits
from core.platform.tabular import (
    Column,
    FileReport,
    ProblemList,
    Row,
    RowProblem,
    Table,
    stream_table,
)
from db.bulk import bulk_upsert
from db.engine import is_postgres, write_transaction
from db.models import (
    Campaign,
    CouponEvent,
    CouponEventKind,
    Merchant,
    OrgLevel,
    OrgUnit,
)

ProgressFn = Callable[[float, str], None]

# Coupons are redeemed and reported after the last rights day: a week's grace.
GRACE_DAYS = 7
SPOOL_BATCH = 20_000
HASH_MEMO = 100_000
# A coupon file is the one import that needs a million rows (DESIGN.md: an import that
# needs more passes its own limits); the cells stay bounded as everywhere.
COUPON_LIMITS = ReadLimits(max_bytes=200 * MB, max_rows=1_200_000, max_cells=13_000_000)

IMPORT_COLUMNS = (
    Column("event_id", "事件编号", aliases=("券事件编号", "event")),
    Column("campaign_id", "活动编号", aliases=("campaign",)),
    Column("coupon_line", "券序号", aliases=("权益券序号", "coupon")),
    Column("outlet_code", "网点编码"),
    Column("merchant_id", "商户编号", aliases=("merchant",), required=False),
    Column("customer_id", "客户ID", aliases=("customer", "客户标识")),
    Column("event_type", "事件类型", aliases=("kind", "事件")),
    Column("face_value", "面值(元)", aliases=("面值", "face_value_yuan")),
    Column("discount", "实际优惠(元)", aliases=("实际优惠", "discount_yuan")),
    Column("time", "时间", aliases=("at",)),
)
_LABELS = {c.key: c.zh for c in IMPORT_COLUMNS}
KIND_WORDS = {
    **{k.value: k for k in CouponEventKind},
    **{k.label: k for k in CouponEventKind},
    "领券": CouponEventKind.CLAIMED,
    "用券": CouponEventKind.REDEEMED,
}
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_WRITE_COLUMNS = (
    "event_id",
    "campaign_id",
    "coupon_line",
    "outlet_id",
    "merchant_id",
    "customer",
    "kind",
    "face_value_fen",
    "discount_fen",
    "at",
    "imported_at",
)


@dataclass
class CouponImportReport(FileReport):
    created: int = 0
    replaced: int = 0
    campaigns: list[int] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.ok:
            return self.refusal(kept="权益券数据", detail=f"（涉及 {self.bad_lines} 行）")
        which = "、".join(str(c) for c in self.campaigns)
        if self.dry_run:
            return f"校验通过（未写入）：{self.rows} 条权益券事件，活动 {which}。"
        return (
            f"导入成功：{self.rows} 条权益券事件（新增 {self.created}，按事件编号覆盖 "
            f"{self.replaced}），活动 {which}。客户ID 已加密存储。"
        )


@dataclass(frozen=True)
class _CampaignRule:
    """What rows of one campaign must satisfy."""

    id: int
    city_id: int
    first: datetime  # aware: the campaign's first day 00:00 Shanghai
    last: datetime  # aware: the end of the grace period
    lines: tuple[frozenset[int], ...]  # the merchants of each coupon line (empty: any)


def import_coupons(
    session: Session,
    *,
    actor: Actor,
    data: bytes,
    filename: str,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
) -> CouponImportReport:
    """Validate the whole file; write it only when every row is valid (all or nothing)."""
    ensure_allowed(actor, Action.IMPORT_COUPONS)
    notify = progress or (lambda _f, _t: None)
    report = CouponImportReport(filename=filename, dry_run=dry_run)
    notify(0.05, "正在读取并校验…")
    table = Table(problems=ProblemList())
    validator = _RowValidator(session, actor, report.problems)
    with tempfile.TemporaryFile() as spool:
        batches = _spool(
            validator.records(stream_table(data, filename, IMPORT_COLUMNS, table, COUPON_LIMITS)),
            spool,
        )
        file_level = [p for p in table.problems if p.line == 0]
        if file_level:
            report.problems = ProblemList(file_level)
        else:
            report.problems.extend(table.problems)
        report.ignored_columns = table.ignored_columns
        report.rows = validator.rows
        report.campaigns = sorted(validator.campaigns_seen)
        if not report.ok or dry_run:
            notify(1.0, "校验完成")
            return report
        notify(0.6, "正在写入…")
        _write(session, actor, report, spool, batches)
    notify(1.0, "导入完成")
    return report


def _spool(records: Iterator[tuple], spool: IO[bytes]) -> int:
    """Pickle the valid rows to `spool` in batches; returns the number of batches."""
    batch: list[tuple] = []
    batches = 0
    for record in records:
        batch.append(record)
        if len(batch) >= SPOOL_BATCH:
            pickle.dump(batch, spool, pickle.HIGHEST_PROTOCOL)
            batches += 1
            batch = []
    if batch:
        pickle.dump(batch, spool, pickle.HIGHEST_PROTOCOL)
        batches += 1
    return batches


def _unspool(spool: IO[bytes], batches: int, now: datetime, sqlite: bool) -> Iterator[tuple]:
    spool.seek(0)
    for _ in range(batches):
        for record in pickle.load(spool):
            if sqlite:
                # The stored form of a UTC timestamp on SQLite, written here once per row
                # (the bulk writer would memoise a million distinct values).
                at = record[9].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                yield (*record[:9], at, now)
            else:
                yield (*record, now)


def _write(
    session: Session, actor: Actor, report: CouponImportReport, spool: IO[bytes], batches: int
) -> None:
    table = CouponEvent.__table__
    count = sa.select(sa.func.count()).select_from(table)
    with write_transaction(session):
        before = session.execute(count).scalar_one()
        bulk_upsert(
            session,
            "coupon_event",
            _WRITE_COLUMNS,
            ("event_id",),
            _unspool(spool, batches, utcnow(), not is_postgres(session)),
        )
        report.created = session.execute(count).scalar_one() - before
        report.replaced = report.rows - report.created
        audit.record(
            session,
            actor=actor,
            action=AuditAction.COUPONS_IMPORT,
            target_type="file",
            target_id=filename_id(report.filename),
            summary=report.summary(),
            after={
                "rows": report.rows,
                "created": report.created,
                "replaced": report.replaced,
                "campaigns": report.campaigns,
            },
        )


def filename_id(filename: str) -> str:
    return filename[:64]


class _RowValidator:
    """Checks rows one at a time against the campaigns, the org tree, the actor's scope and
    the earlier rows; turns the valid ones into the tuples written."""

    def __init__(self, session: Session, actor: Actor, problems: list[RowProblem]) -> None:
        self.session = session
        self.problems = problems
        self.window = DateWindow.current()
        self.earliest_at = datetime.combine(self.window.earliest, time(0), tzinfo=SHANGHAI)
        self.city_id = (
            actor.city_id if scope_of(actor, Action.IMPORT_COUPONS) is Scope.CITY else None
        )
        self.outlets = {
            code: (uid, level, city_id)
            for code, uid, level, city_id in session.execute(
                sa.select(OrgUnit.code, OrgUnit.id, OrgUnit.level, OrgUnit.city_id)
            )
        }
        self.merchants = dict(session.execute(sa.select(Merchant.id, Merchant.city_id)).all())
        self.rules: dict[object, _CampaignRule | str] = {}
        self.seen: dict[str, int] = {}
        self.hashes: dict[str, str] = {}
        self.campaigns_seen: set[int] = set()
        self.rows = 0

    def records(self, rows: Iterator[Row]) -> Iterator[tuple]:
        for row in rows:
            self.rows += 1
            record = self.check(row)
            if record is not None and not self.problems:
                yield record

    def check(self, row: Row) -> tuple | None:
        """The tuple to write (without `imported_at`), or None with the problems named."""
        cells = row.cells
        found = len(self.problems)
        event_id = self._event_id(row)
        rule = self._campaign(row)
        line_no = self._coupon_line(row, rule)
        outlet_id = self._outlet(row, rule)
        merchant_id = self._merchant(row, rule, line_no)
        raw = cells.get("customer_id")
        # The common cells take a fast path; anything unusual goes through the full parser.
        if type(raw) is str and 0 < len(customer := raw.strip()) <= 64:
            pass
        else:
            customer = self._parse(row, "customer_id", _customer)
        kind = KIND_WORDS.get(cells.get("event_type")) or self._parse(row, "event_type", _kind)
        face = self._parse(row, "face_value", _parse_face)
        discount = self._parse(row, "discount", _parse_discount)
        moment = self._moment(row, rule)
        if face is not None and discount is not None and discount > face:
            self._problem(row, "discount", "实际优惠不能大于面值")
        if len(self.problems) > found:
            return None
        self.campaigns_seen.add(rule.id)
        return (
            event_id,
            rule.id,
            line_no,
            outlet_id,
            merchant_id,
            self._hashed(customer),
            kind.value,
            face,
            discount,
            moment,
        )

    def _hashed(self, customer: str) -> str:
        # A customer claims and then redeems: remember recent hashes (bounded memory).
        hashed = self.hashes.get(customer)
        if hashed is None:
            if len(self.hashes) >= HASH_MEMO:
                self.hashes.clear()
            hashed = self.hashes[customer] = hash_customer(customer)
        return hashed

    def _problem(self, row: Row, key: str, reason: str) -> None:
        self.problems.append(RowProblem(row.line, _LABELS[key], _show(row.cells.get(key)), reason))

    def _parse(self, row: Row, key: str, parse: Callable[[object], object]) -> object:
        try:
            return parse(row.cells.get(key))
        except CellError as exc:
            self._problem(row, key, str(exc))
            return None

    def _event_id(self, row: Row) -> str | None:
        raw = row.cells.get("event_id")
        text = _plain(raw)
        if not text:
            self._problem(row, "event_id", "事件编号不能为空")
            return None
        if not _EVENT_ID.fullmatch(text):
            self._problem(row, "event_id", "事件编号只能包含字母、数字和 _ . : -，最长 64 个字符")
            return None
        first = self.seen.setdefault(text, row.line)
        if first != row.line:
            self._problem(row, "event_id", f"与第 {first} 行的事件编号重复")
            return None
        return text

    def _campaign(self, row: Row) -> _CampaignRule | None:
        raw = row.cells.get("campaign_id")
        key = _plain(raw)
        rule = self.rules.get(key)
        if rule is None:
            rule = self.rules[key] = self._load_campaign(key)
        if isinstance(rule, str):
            self._problem(row, "campaign_id", rule)
            return None
        return rule

    def _load_campaign(self, text: str) -> _CampaignRule | str:
        if not text.isdigit():
            return "活动编号须为数字"
        campaign = self.session.get(Campaign, int(text))
        if campaign is None:
            return "活动不存在"
        if self.city_id is not None and campaign.city_id != self.city_id:
            return "该活动不在您的管辖范围内"
        if campaign.state not in COMMITTED_STATES:
            return f"活动状态为「{campaign.state.label}」，只有已通过、待开始、进行中或已结束的活动可以导入权益券数据"
        design = CampaignDesign.model_validate(campaign.design)
        lines = tuple(frozenset(c.merchant_ids) for c in design.coupons)
        end = campaign.end_date + timedelta(days=GRACE_DAYS + 1)
        return _CampaignRule(
            campaign.id,
            campaign.city_id,
            datetime.combine(campaign.start_date, time(0), tzinfo=SHANGHAI),
            datetime.combine(end, time(0), tzinfo=SHANGHAI),
            lines,
        )

    def _coupon_line(self, row: Row, rule: _CampaignRule | None) -> int | None:
        text = _plain(row.cells.get("coupon_line"))
        if not text.isdigit():
            self._problem(row, "coupon_line", "券序号须为正整数（方案中第几张权益券）")
            return None
        number = int(text)
        if rule is not None and not 1 <= number <= len(rule.lines):
            self._problem(row, "coupon_line", f"活动只有 {len(rule.lines)} 张权益券")
            return None
        return number

    def _outlet(self, row: Row, rule: _CampaignRule | None) -> int | None:
        code = _plain(row.cells.get("outlet_code"))
        unit = self.outlets.get(code)
        if not code:
            reason = "网点编码不能为空"
        elif unit is None:
            reason = "网点编码不存在"
        elif unit[1] != OrgLevel.OUTLET:
            reason = "该编码不是网点"
        elif self.city_id is not None and unit[2] != self.city_id:
            reason = "该网点不在您的管辖范围内"
        elif rule is not None and unit[2] != rule.city_id:
            reason = "该网点不属于活动所在的市州"
        else:
            return unit[0]
        self._problem(row, "outlet_code", reason)
        return None

    def _merchant(self, row: Row, rule: _CampaignRule | None, line_no: int | None) -> int | None:
        text = _plain(row.cells.get("merchant_id"))
        if not text:
            return None
        if not text.isdigit() or int(text) not in self.merchants:
            self._problem(row, "merchant_id", "商户不存在")
            return None
        merchant = int(text)
        if rule is None:
            return merchant
        if self.merchants[merchant] != rule.city_id:
            self._problem(row, "merchant_id", "该商户不属于活动所在的市州")
        elif line_no is not None and 1 <= line_no <= len(rule.lines):
            allowed = rule.lines[line_no - 1]
            if allowed and merchant not in allowed:
                self._problem(row, "merchant_id", f"该商户不是第 {line_no} 张权益券的承兑商户")
        return merchant

    def _moment(self, row: Row, rule: _CampaignRule | None) -> datetime | None:
        moment = self._parse(row, "time", self._time)
        if moment is None or rule is None:
            return moment
        if not rule.first <= moment < rule.last:
            last = (rule.last - timedelta(days=1)).date()
            self._problem(
                row,
                "time",
                f"时间不在活动期及其后 {GRACE_DAYS} 天内（{rule.first.date()} 至 {last}）",
            )
            return None
        return moment

    def _time(self, value: object) -> datetime:
        if type(value) is str and len(value) == 19 and value[4] == "-" and value[10] == " ":
            try:  # the common "2026-11-08 10:30:00", read without the general rules
                moment = datetime.fromisoformat(value).replace(tzinfo=SHANGHAI)
            except ValueError:
                moment = None
            if moment is not None and self.earliest_at <= moment <= self.window.now:
                return moment
            if moment is not None:
                return self.window.check_moment(moment)
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime.combine(value, time(0))
        else:
            text = _plain(value).replace("/", "-").replace("T", " ")
            try:
                moment = datetime.fromisoformat(text)
            except ValueError as exc:
                raise CellError(f"无法识别的时间：{text}（应为 2026-11-08 10:30:00）") from exc
        moment = moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)
        return self.window.check_moment(moment)


def _plain(value: object) -> str:
    if type(value) is str:
        text = value.strip()
        return text if text.isascii() else unicodedata.normalize("NFKC", text).strip()
    if value is None:
        return ""
    if isinstance(value, float) and value == int(value):
        value = int(value)
    text = str(value).strip()
    return text if text.isascii() else unicodedata.normalize("NFKC", text).strip()


def _customer(value: object) -> str:
    return parse_text(value, max_len=64, what="客户ID")


def _kind(value: object) -> CouponEventKind:
    kind = KIND_WORDS.get(_plain(value).lower()) or KIND_WORDS.get(_plain(value))
    if kind is None:
        raise CellError("事件类型应为 发放/领取/核销/过期（issued/claimed/redeemed/expired）")
    return kind


def _money(what: str) -> Callable[[object], int]:
    def parse(value: object) -> int:
        fen = parse_amount_fen(value, what=what)
        if fen < 0:
            raise CellError(f"{what}不能为负数")
        return fen

    return parse


_parse_face = _money("面值")
_parse_discount = _money("实际优惠")


def _show(value: object) -> str:
    return "" if value is None else str(value)[:40]
