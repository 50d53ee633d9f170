"""Reading uploaded tables (CSV in UTF-8/GBK/GB18030, XLSX) into rows of cells.

Shared by every import (org tree, metrics, merchants, channel events). The reader knows
nothing about the domain: it maps Chinese or English headers to column keys, keeps each
row's line number, and turns a broken file into `RowProblem`s a user can act on.

Every file is read as a stream and bounded by what it holds, never by what it declares
(`ReadLimits`): a hostile upload is refused in seconds with a Chinese reason instead of
exhausting memory. XLSX parsing lives in `xlsx_reader`, the limits in `read_limits`, and
the parsers of single cells (dates, codes, counts, amounts) in `cells`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.platform.read_limits import (
    DEFAULT_LIMITS,
    FORMULA_REASON,
    FORMULA_WITHOUT_VALUE,
    MB,
    FileFormatError,
    ReadLimits,
    too_many_columns,
    too_many_rows,
)

# One row as a reader yields it: a list of cells (CSV) or {0-based column: value} (XLSX,
# which skips empty cells, so a row never holds thousands of Nones).
RawRow = list[object] | dict[int, object]


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    aliases: tuple[str, ...] = ()
    required: bool = True

    def names(self) -> set[str]:
        return {normalize_header(n) for n in (self.key, self.zh, *self.aliases)}


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One reason a file was refused; line 0 means the file as a whole."""

    line: int
    column: str
    value: str
    reason: str


@dataclass(slots=True)
class Row:
    line: int
    cells: dict[str, object]


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


MAX_PROBLEMS_SHOWN = 1_000


class ProblemList(list[RowProblem]):
    """The problems of one file: every one is counted, only the first `MAX_PROBLEMS_SHOWN`
    are kept. A 20 MB file can hold millions of bad cells; a user fixes them from the first
    pages, and keeping them all would cost gigabytes.

    `len()` and truthiness count every problem added (so "did this row add a problem?"
    checks keep working); iterating and indexing see the kept ones.
    """

    def __init__(self, problems: Iterable[RowProblem] = ()) -> None:
        super().__init__()
        self.total = 0
        self.lines: set[int] = set()
        self.extend(problems)

    def append(self, problem: RowProblem) -> None:
        self.total += 1
        self.lines.add(problem.line)
        if super().__len__() < MAX_PROBLEMS_SHOWN:
            super().append(problem)

    def extend(self, problems: Iterable[RowProblem]) -> None:
        for problem in problems:
            self.append(problem)

    def __iadd__(self, problems: Iterable[RowProblem]) -> ProblemList:  # type: ignore[override]
        self.extend(problems)
        return self

    def __len__(self) -> int:
        return self.total

    @property
    def shown(self) -> int:
        return super().__len__()


@dataclass
class FileReport:
    """What an all-or-nothing import of one file found; each import adds its own counts."""

    filename: str
    dry_run: bool = False
    rows: int = 0
    problems: list[RowProblem] = field(default_factory=ProblemList)

    def __post_init__(self) -> None:
        if not isinstance(self.problems, ProblemList):
            self.problems = ProblemList(self.problems)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_lines(self) -> int:
        """Lines with at least one problem (0 for the file as a whole counts as one)."""
        return len(_problem_list(self.problems).lines)

    def refusal(self, kept: str = "数据", detail: str = "") -> str:
        problems = _problem_list(self.problems)
        shown = f"，下面列出前 {problems.shown} 处" if problems.shown < problems.total else ""
        return (
            f"文件未导入：发现 {problems.total} 处问题{detail}{shown}，请修改后重新上传，"
            f"已有{kept}未做任何改动。"
        )


def _problem_list(problems: list[RowProblem]) -> ProblemList:
    return problems if isinstance(problems, ProblemList) else ProblemList(problems)


def normalize_header(name: object) -> str:
    text = unicodedata.normalize("NFKC", str(name or "")).strip().lower()
    return re.sub(r"[\s_]+", "_", text)


def read_table(
    data: bytes, filename: str, columns: Sequence[Column], limits: ReadLimits = DEFAULT_LIMITS
) -> Table:
    """Rows of the first sheet / the CSV, keyed by column key, or file-level problems.

    A file-level refusal (line 0) replaces everything found so far: no row of a refused
    file is handed to an import.
    """
    table = Table()
    try:
        _check_size(len(data), limits)
        if not data or data.isspace():
            raise FileFormatError("文件为空")
        rows = _xlsx_rows(data, limits) if _is_xlsx(data) else _csv_rows(data, limits)
        _fill(table, rows, columns, limits)
    except FileFormatError as exc:
        table.rows.clear()
        table.problems[:] = [RowProblem(0, "", filename, exc.message)]
    return table


def read_file(path: Path, limits: ReadLimits = DEFAULT_LIMITS) -> bytes:
    """A file from disk for an import, refused before reading when it is too large."""
    _check_size(path.stat().st_size, limits)
    with path.open("rb") as file:
        data = file.read(limits.max_bytes + 1)  # the file may have grown since stat()
    _check_size(len(data), limits)
    return data


def _check_size(size: int, limits: ReadLimits) -> None:
    if size > limits.max_bytes:
        raise FileFormatError(
            f"文件过大（{size / MB:.1f} MB，上限 {limits.max_bytes / MB:g} MB），请拆分后分批导入"
        )


def stream_table(
    data: bytes,
    filename: str,
    columns: Sequence[Column],
    table: Table,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> Iterator[Row]:
    """`read_table` for files too large to hold as rows (a million coupon events): yields
    each row as it is read, and puts the problems and ignored columns on `table` (whose
    `rows` stay empty). A file-level refusal met part-way is added as a line-0 problem and
    ends the stream: the caller must then discard what it took (an all-or-nothing import
    checks `table.problems` before it commits)."""
    try:
        _check_size(len(data), limits)
        if not data or data.isspace():
            raise FileFormatError("文件为空")
        rows = _xlsx_rows(data, limits) if _is_xlsx(data) else _csv_rows(data, limits)
        yield from _iter_rows(table, rows, columns, limits)
    except FileFormatError as exc:
        table.problems[:] = [RowProblem(0, "", filename, exc.message)]


def _fill(
    table: Table, rows: Iterator[tuple[int, RawRow]], columns: Sequence[Column], limits: ReadLimits
) -> None:
    table.rows.extend(_iter_rows(table, rows, columns, limits))


def _iter_rows(
    table: Table, rows: Iterator[tuple[int, RawRow]], columns: Sequence[Column], limits: ReadLimits
) -> Iterator[Row]:
    first = next(rows, None)
    if first is None:
        raise FileFormatError("文件为空")
    header_line, header = first
    positions = _map_header(_items(header), columns, table, header_line)
    if table.problems:
        return
    labels = {c.key: c.zh for c in columns}
    cells_seen = text_kept = kept = 0
    for line, values in rows:
        # An XLSX row holds only cells with content; a CSV row may end in empty fields.
        cells_seen += len(values) if isinstance(values, dict) else len(values) - values.count("")
        if cells_seen > limits.max_cells:
            raise FileFormatError(
                f"第 {line} 行：单元格总数超过上限（{limits.max_cells:,} 个），请拆分后分批导入"
            )
        # A CSV row whose first cell has content is not blank: no need to look at the rest.
        starts_with_content = type(values) is list and values and values[0].strip()
        if not starts_with_content and all(_blank(v) for v in _values(values)):
            continue
        cells, chars = _mapped_cells(line, values, positions, labels, limits, table.problems)
        if cells is None:
            continue  # its bad cell is named; the import need not add "不能为空" for it
        text_kept += chars
        if text_kept > limits.max_text_chars:
            raise FileFormatError(_too_much_text(line, limits))
        kept += 1
        yield Row(line, cells)
    if not kept and not table.problems:
        raise FileFormatError("文件只有表头，没有数据行")


def _mapped_cells(
    line: int,
    values: RawRow,
    positions: dict[str, int],
    labels: dict[str, str],
    limits: ReadLimits,
    problems: list[RowProblem],
) -> tuple[dict[str, object] | None, int]:
    """The row's cells by column key and the characters of text they hold, or None when a
    cell is refused (a formula without its value, a cell over `max_cell_chars`)."""
    if type(values) is list:
        # A CSV row holds only text: the common case, without the per-cell checks below
        # unless a cell is too long.
        width = len(values)
        cells = {key: values[pos] if pos < width else None for key, pos in positions.items()}
        lengths = [len(v) for v in cells.values() if v is not None]
        if max(lengths, default=0) <= limits.max_cell_chars:
            return cells, sum(lengths)
    cells = {}
    chars = 0
    refused = False
    for key, pos in positions.items():
        value = _cell(values, pos)
        if value is FORMULA_WITHOUT_VALUE:
            problems.append(RowProblem(line, labels[key], "", FORMULA_REASON))
            refused = True
        elif isinstance(value, str):
            if len(value) > limits.max_cell_chars:
                problems.append(
                    RowProblem(
                        line,
                        labels[key],
                        value[:30] + "…",
                        f"内容过长（{len(value)} 个字符，上限 {limits.max_cell_chars}）",
                    )
                )
                refused = True
            chars += len(value)
        cells[key] = value
    return (None, 0) if refused else (cells, chars)


def _items(row: RawRow) -> Iterable[tuple[int, object]]:
    return sorted(row.items()) if isinstance(row, dict) else enumerate(row)


def _values(row: RawRow) -> Iterable[object]:
    return row.values() if isinstance(row, dict) else row


def _cell(row: RawRow, pos: int) -> object:
    if isinstance(row, dict):
        return row.get(pos)
    return row[pos] if pos < len(row) else None


def _is_xlsx(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _encoding(data: bytes) -> str:
    """The encoding the whole file decodes in, checked piece by piece (no copy of the file)."""
    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise FileFormatError("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV")
    if b"\x00" in data[:4096]:
        raise FileFormatError("无法识别的文件：不是 CSV 文本或 XLSX 表格（UTF-16 请另存为 UTF-8）")
    view = memoryview(data)
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for start in range(0, len(data), MB):
                decoder.decode(view[start : start + MB])
            decoder.decode(b"", True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise FileFormatError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV")


@dataclass
class _RecordSize:
    """Characters read since the current CSV record started (a record may span lines)."""

    chars: int = 0


def _bounded_lines(text: io.TextIOBase, budget: _RecordSize, limits: ReadLimits) -> Iterator[str]:
    limit = limits.max_line_chars
    while line := text.readline(limit + 1):
        budget.chars += len(line)
        if budget.chars > limit:
            raise _LineTooLong
        yield line


class _LineTooLong(Exception):
    pass


def _csv_rows(data: bytes, limits: ReadLimits) -> Iterator[tuple[int, list[object]]]:
    text = io.TextIOWrapper(io.BytesIO(data), encoding=_encoding(data), newline="")
    budget = _RecordSize()
    reader = csv.reader(_bounded_lines(text, budget, limits))
    previous_end = records = 0
    try:
        for values in reader:
            # A row's number is the line it starts on (a quoted cell may span several).
            start = previous_end + 1
            previous_end = reader.line_num
            records += 1
            budget.chars = 0
            if records > limits.max_rows + 1:
                raise FileFormatError(too_many_rows(start, limits))
            if len(values) > limits.max_columns and any(values[limits.max_columns :]):
                raise FileFormatError(too_many_columns(start, limits))
            yield start, values
    except _LineTooLong:
        raise FileFormatError(
            f"第 {previous_end + 1} 行过长，无法解析：一行最多 {limits.max_line_chars:,} 个字符"
            f"（最多 {limits.max_columns} 列，每格 {limits.max_cell_chars} 个字符），"
            "请检查引号是否成对"
        ) from None
    except csv.Error as exc:
        raise FileFormatError(
            f"第 {reader.line_num} 行无法解析：单元格过长或引号不匹配（{exc}）"
        ) from exc


def _too_much_text(line: int, limits: ReadLimits) -> str:
    return (
        f"第 {line} 行：文件中的文字总量超过上限（{limits.max_text_chars:,} 个字符），"
        "请拆分后分批导入"
    )


def _xlsx_rows(data: bytes, limits: ReadLimits) -> Iterator[tuple[int, dict[int, object]]]:
    from core.platform.xlsx_reader import xlsx_rows  # only needed for XLSX uploads

    return xlsx_rows(data, limits)


def _map_header(
    header: Iterable[tuple[int, object]], columns: Sequence[Column], table: Table, line: int
) -> dict[str, int]:
    positions: dict[str, int] = {}
    by_name = {name: col for col in columns for name in col.names()}
    for pos, name in header:
        if name is FORMULA_WITHOUT_VALUE:
            table.problems.append(RowProblem(line, "", "", FORMULA_REASON))
            continue
        normalized = normalize_header(name)
        if not normalized:
            continue
        column = by_name.get(normalized)
        if column is None:
            table.ignored_columns.append(str(name))
        elif column.key in positions:
            table.problems.append(
                RowProblem(line, column.key, str(name), f"列「{column.zh}」重复出现")
            )
        else:
            positions[column.key] = pos
    missing = [c for c in columns if c.required and c.key not in positions]
    if missing:
        names = "、".join(f"{c.zh}（{c.key}）" for c in missing)
        table.problems.append(RowProblem(line, "", "", f"缺少必需的列：{names}"))
    return positions


def problems_as_rows(problems: Sequence[RowProblem]) -> list[dict[str, object]]:
    """The problems table users see and download (Chinese headers)."""
    return [
        {"行号": p.line or "整个文件", "列": p.column, "内容": p.value, "原因": p.reason}
        for p in sorted(problems, key=lambda p: (p.line, p.column))
    ]
