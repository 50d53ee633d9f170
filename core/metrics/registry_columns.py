"""Import columns that follow the metric registry: each active metric of a level is an
optional column (its key, its Chinese name, or the name with the unit in brackets), parsed
as a count (≥ 0) or, for money, as yuan into integer fen (may be negative)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from sqlmodel import Session

from core.metrics.kinds import MetricSpec
from core.metrics.registry import Level, specs
from core.platform.cells import CellError, parse_amount_fen, parse_count
from core.platform.tabular import Column, Row, RowProblem

Parser = tuple[str, str, Callable[[object], int]]  # key, Chinese name, parser


def registry_extras(session: Session, level: Level) -> dict[str, MetricSpec]:
    """Outlet level: the registry metrics beyond the builtin six (those have fixed columns);
    staff level: every active staff metric."""
    found = specs(session, level)
    if level is Level.OUTLET:
        return {k: s for k, s in found.items() if not s.builtin}
    return found


def extra_columns(metrics: dict[str, MetricSpec]) -> list[Column]:
    columns = []
    for spec in metrics.values():
        aliases = (
            tuple({f"{spec.label}({spec.unit})", f"{spec.label}（{spec.unit}）"})
            if spec.unit
            else ()
        )
        if spec.key == "deposits":
            aliases += ("新增存款", "新增余额", "新增余额(元)")
        columns.append(Column(spec.key, spec.label, aliases=aliases, required=False))
    return columns


def value_parsers(metrics: dict[str, MetricSpec]) -> list[Parser]:
    return [
        (
            spec.key,
            spec.label,
            partial(parse_amount_fen if spec.is_money else parse_count, what=spec.label),
        )
        for spec in metrics.values()
    ]


def parse_values(
    row: Row, parsers: list[Parser], problems: list[RowProblem]
) -> tuple[tuple[str, int], ...]:
    """(key, value) of the registry cells the row fills; a blank cell means no value."""
    found = []
    for key, label, parse in parsers:
        raw = row.cells.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        try:
            found.append((key, parse(raw)))
        except CellError as exc:
            problems.append(RowProblem(row.line, label, str(raw)[:40], str(exc)))
    return tuple(found)
