"""Importing the org tree (机构) from CSV/XLSX: create or update by code, all or nothing."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session, select

from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.cells import CellError, parse_code, parse_text
from core.platform.clock import utcnow
from core.platform.org import follow_city_moves, recompute_ancestors
from core.platform.permissions import Action, Actor, ensure_allowed
from core.platform.tabular import Column, FileReport, Row, RowProblem, read_table
from db.engine import write_transaction
from db.models import ORG_LEVEL_LABELS, PARENT_LEVEL, OrgLevel, OrgUnit

COLUMNS = (
    Column("code", "机构编码"),
    Column("name", "机构名称"),
    Column("level", "层级"),
    Column("parent_code", "上级编码", required=False),
)
AUDIT_DETAIL_LIMIT = 500
_LEVEL_WORDS = {
    **{level.value: level for level in OrgLevel},
    **{label: level for level, label in ORG_LEVEL_LABELS.items()},
    "市/州": OrgLevel.CITY,
    "州": OrgLevel.CITY,
    "县": OrgLevel.COUNTY,
    "区": OrgLevel.COUNTY,
    "支局": OrgLevel.OUTLET,
}


@dataclass(frozen=True)
class _Unit:
    line: int
    code: str
    name: str
    level: OrgLevel
    parent_code: str


@dataclass
class OrgImportReport(FileReport):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0  # outlets now in another city (their codes follow them)

    def summary(self) -> str:
        if not self.ok:
            return self.refusal("机构")
        verb = "校验通过（未写入）" if self.dry_run else "导入成功"
        moved = (
            f"其中 {self.moved} 个网点改属其他市，其渠道活码随之改属新市。" if self.moved else ""
        )
        return (
            f"{verb}：{self.rows} 个机构（新增 {self.created}，更新 {self.updated}，"
            f"未变 {self.unchanged}）。{moved}"
        )


def import_org(
    session: Session, *, actor: Actor, data: bytes, filename: str, dry_run: bool = False
) -> OrgImportReport:
    ensure_allowed(actor, Action.IMPORT_ORG)
    report = OrgImportReport(filename=filename, dry_run=dry_run)
    table = read_table(data, filename, COLUMNS)
    report.problems.extend(table.problems)
    report.rows = len(table.rows)
    units = _parse(table.rows, report.problems)
    existing = {u.code: u for u in session.exec(select(OrgUnit))}
    _check_tree(units, existing, report.problems)
    if not report.ok:
        return report
    _count_changes(units, existing, report)
    if dry_run:
        return report
    with write_transaction(session):
        changes = _apply(session, units, existing)
        session.flush()
        moved = follow_city_moves(session, recompute_ancestors(session))
        report.moved = len(moved)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.ORG_IMPORT,
            target_type="file",
            target_id=filename[:64],
            summary=report.summary(),
            # Enough to answer "what did this import change?" without storing whole trees.
            before={"updated": [c[0] for c in changes if c[0]][:AUDIT_DETAIL_LIMIT]},
            after={
                "changed": [c[1] for c in changes][:AUDIT_DETAIL_LIMIT],
                "count": len(changes),
                "moved": moved[:AUDIT_DETAIL_LIMIT],
            },
        )
    return report


def _parse(rows: list[Row], problems: list[RowProblem]) -> list[_Unit]:
    units: list[_Unit] = []
    seen: dict[str, int] = {}
    for row in rows:
        bad = len(problems)
        try:
            code = parse_code(row.cells.get("code"), what="机构编码")
        except CellError as exc:
            problems.append(
                RowProblem(row.line, "机构编码", str(row.cells.get("code") or ""), str(exc))
            )
            code = None
        try:
            name = parse_text(row.cells.get("name"), max_len=100, what="机构名称")
        except CellError as exc:
            problems.append(
                RowProblem(row.line, "机构名称", str(row.cells.get("name") or "")[:40], str(exc))
            )
        level_text = str(row.cells.get("level") or "").strip().lower()
        level = _LEVEL_WORDS.get(level_text)
        if level is None:
            problems.append(
                RowProblem(
                    row.line,
                    "层级",
                    level_text,
                    "层级须为 province/city/county/outlet 或 省/市/区县/网点",
                )
            )
        parent_raw = row.cells.get("parent_code")
        parent_code = ""
        if parent_raw not in (None, ""):
            try:
                parent_code = parse_code(parent_raw, what="上级编码")
            except CellError as exc:
                problems.append(RowProblem(row.line, "上级编码", str(parent_raw), str(exc)))
        if code is not None:
            first = seen.setdefault(code, row.line)
            if first != row.line:
                problems.append(RowProblem(row.line, "机构编码", code, f"与第 {first} 行重复"))
        if len(problems) == bad:
            units.append(_Unit(row.line, code, name, level, parent_code))
    return units


def _check_tree(
    units: list[_Unit], existing: dict[str, OrgUnit], problems: list[RowProblem]
) -> None:
    """Parents must exist (in the file or the database) and be exactly one level up; the
    tree has exactly one province."""
    levels = {code: unit.level for code, unit in existing.items()}
    levels.update({u.code: u.level for u in units})
    province = next((c for c, u in existing.items() if u.level == OrgLevel.PROVINCE), None)
    for u in units:
        wanted = PARENT_LEVEL[u.level]
        old = existing.get(u.code)
        if u.level == OrgLevel.PROVINCE:
            province = province or u.code
            if u.code != province:
                problems.append(
                    RowProblem(
                        u.line,
                        "层级",
                        u.code,
                        f"机构树只能有一个省级机构（已有 {province}），不能再导入省级机构 {u.code}",
                    )
                )
        if old is not None and old.level != u.level:
            problems.append(
                RowProblem(
                    u.line,
                    "层级",
                    u.level.label,
                    f"机构 {u.code} 已是{old.level.label}，层级不能修改",
                )
            )
        if wanted is None:
            if u.parent_code:
                problems.append(RowProblem(u.line, "上级编码", u.parent_code, "省级机构不应有上级"))
            continue
        if not u.parent_code:
            problems.append(
                RowProblem(
                    u.line, "上级编码", "", f"{u.level.label}必须填写上级（{wanted.label}）编码"
                )
            )
        elif u.parent_code not in levels:
            problems.append(RowProblem(u.line, "上级编码", u.parent_code, "上级编码不存在"))
        elif levels[u.parent_code] != wanted:
            problems.append(
                RowProblem(
                    u.line,
                    "上级编码",
                    u.parent_code,
                    f"{u.level.label}的上级须为{wanted.label}，该编码是{levels[u.parent_code].label}",
                )
            )


def _change_of(u: _Unit, existing: dict[str, OrgUnit], codes: dict[int | None, str]) -> str:
    """ "created", "updated" or "unchanged": one rule for the dry run's counts and the import.
    `codes` maps the ids of `existing` to their codes."""
    old = existing.get(u.code)
    if old is None:
        return "created"
    if old.name != u.name or codes.get(old.parent_id, "") != u.parent_code:
        return "updated"
    return "unchanged"


def _count_changes(
    units: list[_Unit], existing: dict[str, OrgUnit], report: OrgImportReport
) -> None:
    codes = {unit.id: code for code, unit in existing.items()}
    kinds = Counter(_change_of(u, existing, codes) for u in units)
    report.created, report.updated = kinds["created"], kinds["updated"]
    report.unchanged = kinds["unchanged"]


def _apply(
    session: Session, units: list[_Unit], existing: dict[str, OrgUnit]
) -> list[tuple[dict | None, dict]]:
    """Create and update in level order so parents exist first; returns (before, after) pairs."""
    order = list(OrgLevel)
    by_code = dict(existing)
    codes = {unit.id: code for code, unit in existing.items()}
    changes: list[tuple[dict | None, dict]] = []
    level = None
    for u in sorted(units, key=lambda u: order.index(u.level)):
        if u.level != level:  # the level above has its ids now: one flush per level, not per row
            session.flush()
            level = u.level
        parent = by_code.get(u.parent_code) if u.parent_code else None
        parent_id = parent.id if parent else None
        after = {
            "code": u.code,
            "name": u.name,
            "level": u.level.value,
            "parent_code": u.parent_code,
        }
        kind = _change_of(u, existing, codes)
        if kind == "created":
            unit = OrgUnit(code=u.code, name=u.name, level=u.level, parent_id=parent_id)
            session.add(unit)
            by_code[u.code] = unit
            changes.append((None, after))
        elif kind == "updated":
            old = existing[u.code]
            before = {
                "code": old.code,
                "name": old.name,
                "level": old.level.value,
                "parent_code": codes.get(old.parent_id, ""),
            }
            old.name, old.parent_id, old.updated_at = u.name, parent_id, utcnow()
            session.add(old)
            changes.append((before, after))
    return changes
