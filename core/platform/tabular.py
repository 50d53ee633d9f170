"""Reading uploaded tables (CSV in UTF-8/GBK/GB18030, XLSX) and parsing their cells.

Shared by every import (org tree, metrics, merchants, channel events). The reader knows
nothing about the domain: it maps Chinese or English headers to column keys, keeps each
row's line number, and turns a broken file into `RowProblem`s a user can act on.

Every file is read as a stream and bounded by what it holds, never by what it declares
(`ReadLimits`): a hostile upload is refused in seconds with a Chinese reason instead of
exhausting memory. XLSX parsing lives in `core/platform/xlsx_reader.py`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from core.platform.clock import SHANGHAI, shanghai_now
from core.platform.errors import DomainError
from core.platform.settings import get_settings

MAX_CELL_CHARS = 200
MAX_COUNT = 100_000_000
MAX_ABS_FEN = 10**14  # 1 万亿元: anything larger is a typo or a unit mix-up
MB = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """What one import accepts from a file; anything beyond is refused for the whole file.

    The defaults fit today's imports (a province's daily metrics for a few months, an org
    tree, merchants, channel events) and keep peak memory far under 500 MB for any file the
    upload limit (`.streamlit/config.toml` maxUploadSize = 20 MB) lets through. An import
    that needs more (a coupon file of a million rows) passes its own.
    """

    max_bytes: int = 20 * MB  # the file as uploaded or read from disk
    max_uncompressed: int = 128 * MB  # XLSX: all ZIP members together, once unpacked
    max_ratio: int = 100  # XLSX: unpacked / packed size of any member over 1 MB
    max_rows: int = 200_000  # data rows, blank lines included, header not counted
    max_columns: int = 100  # no cell with content right of this column
    max_cell_chars: int = MAX_CELL_CHARS  # longer cells in a used column are refused row by row
    max_cells: int = 2_000_000  # cells with content in the whole sheet (XLSX) or file (CSV)

    @property
    def max_line_chars(self) -> int:
        """A CSV row (one record, even over several lines) can hold at most this much."""
        return self.max_columns * (self.max_cell_chars + 3)

    @property
    def max_text_chars(self) -> int:
        """Text a table may hold in all, in characters: what a CSV of `max_bytes` could.
        It matters for XLSX, where one shared string can fill a million cells."""
        return self.max_bytes


DEFAULT_LIMITS = ReadLimits()


class FileFormatError(DomainError):
    """The file as a whole cannot be read; the message is the Chinese reason."""


class _FormulaWithoutValue:
    """An XLSX formula cell saved without its computed value (openpyxl writes these)."""

    def __repr__(self) -> str:
        return "FORMULA_WITHOUT_VALUE"


FORMULA_WITHOUT_VALUE = _FormulaWithoutValue()
FORMULA_REASON = "单元格是公式且没有计算结果：请在 Excel 中把公式粘贴为数值后再上传"

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


class CellError(ValueError):
    """A cell could not be parsed; the message is the Chinese reason."""


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


def _fill(
    table: Table, rows: Iterator[tuple[int, RawRow]], columns: Sequence[Column], limits: ReadLimits
) -> None:
    first = next(rows, None)
    if first is None:
        raise FileFormatError("文件为空")
    header_line, header = first
    positions = _map_header(_items(header), columns, table, header_line)
    if table.problems:
        return
    labels = {c.key: c.zh for c in columns}
    cells_seen = text_kept = 0
    for line, values in rows:
        # An XLSX row holds only cells with content; a CSV row may end in empty fields.
        cells_seen += len(values) if isinstance(values, dict) else len(values) - values.count("")
        if cells_seen > limits.max_cells:
            raise FileFormatError(
                f"第 {line} 行：单元格总数超过上限（{limits.max_cells:,} 个），请拆分后分批导入"
            )
        if all(_blank(v) for v in _values(values)):
            continue
        cells, chars = _mapped_cells(line, values, positions, labels, limits, table.problems)
        if cells is None:
            continue  # its bad cell is named; the import need not add "不能为空" for it
        text_kept += chars
        if text_kept > limits.max_text_chars:
            raise FileFormatError(_too_much_text(line, limits))
        table.rows.append(Row(line, cells))
    if not table.rows and not table.problems:
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
    cells: dict[str, object] = {}
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


def too_many_rows(line: int, limits: ReadLimits) -> str:
    """The reason a file is refused at its first line beyond `max_rows` (CSV and XLSX)."""
    return f"行数过多：第 {line} 行超出上限（最多 {limits.max_rows:,} 行数据），请拆分后分批导入"


def _too_much_text(line: int, limits: ReadLimits) -> str:
    return (
        f"第 {line} 行：文件中的文字总量超过上限（{limits.max_text_chars:,} 个字符），"
        "请拆分后分批导入"
    )


def too_many_columns(line: int, limits: ReadLimits) -> str:
    """The reason a file is refused at a cell with content right of `max_columns`."""
    return f"列数过多：第 {line} 行有内容超出第 {limits.max_columns} 列，请删除多余的列"


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


# --- cell parsers: each returns the value or raises CellError with a Chinese reason ---


@dataclass(frozen=True)
class DateWindow:
    """The dates and times an import accepts (DESIGN.md "Trust at the boundary"): not before
    `METRICS_EARLIEST`, not in the future in Shanghai. Taken once per import, so a file
    read across midnight is judged by one rule."""

    earliest: date
    now: datetime  # aware, Shanghai

    @classmethod
    def current(cls) -> DateWindow:
        return cls(get_settings().metrics_earliest, shanghai_now())

    @property
    def today(self) -> date:
        return self.now.date()

    def date_problem(self, day: date) -> str | None:
        """Why `day` is refused (Chinese), or None."""
        if day < self.earliest:
            return f"日期早于允许的最早日期 {self.earliest.isoformat()}"
        if day > self.today:
            return f"日期不能晚于今天（上海时间 {self.today.isoformat()}）"
        return None

    def moment_problem(self, moment: datetime) -> str | None:
        """Why an aware timestamp is refused (Chinese), or None. Compared, never converted:
        converting year 1 or 9999 across time zones overflows."""
        if moment < datetime.combine(self.earliest, time(0), tzinfo=SHANGHAI):
            return f"时间早于允许的最早日期 {self.earliest.isoformat()}"
        if moment > self.now:
            return f"时间不能晚于现在（上海时间 {self.now:%Y-%m-%d %H:%M}）"
        return None

    def check_date(self, day: date, read_as: str = "") -> date:
        problem = self.date_problem(day)
        if problem:
            raise CellError(f"{read_as}{problem}")
        return day

    def check_moment(self, moment: datetime) -> datetime:
        problem = self.moment_problem(moment)
        if problem:
            raise CellError(problem)
        return moment


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]0{1,2}:0{2}(?::0{2})?)?$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
EXCEL_EPOCH = date(1899, 12, 30)


def parse_date(value: object, window: DateWindow | None = None) -> date:
    """ISO, 2026/11/08, 2026年11月8日, an Excel date cell or an Excel serial number, inside
    `window` (default: the current one; an import passes the one it took at its start).
    A serial is only taken when its date falls inside the window (10000 would be 1927),
    and a refusal says what the number was read as."""
    window = window or DateWindow.current()
    if isinstance(value, datetime):
        return window.check_date(value.date())
    if isinstance(value, date):
        return window.check_date(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _excel_serial(value, window)
    text = _clean(value)
    if not text:
        raise CellError("日期不能为空")
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(g) for g in match.groups())
            try:
                parsed = date(year, month, day)
            except ValueError as exc:
                raise CellError(f"日期不存在：{text}") from exc
            return window.check_date(parsed)
    if re.fullmatch(r"\d{5}(\.0+)?", text):
        return _excel_serial(float(text), window)
    raise CellError(f"无法识别的日期：{text}（应为 2026-11-08、2026/11/08 或 2026年11月8日）")


def _excel_serial(serial: float, window: DateWindow) -> date:
    if serial != int(serial) or not 1 <= serial <= 2958465:
        raise CellError(f"无法识别的日期：{serial}")
    day = EXCEL_EPOCH + timedelta(days=int(serial))
    return window.check_date(day, read_as=f"{int(serial)} 按 Excel 日期序号读作 {day}，")


def _clean(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    # Full-width digits and punctuation (１２，３) become ASCII; plain ASCII needs no work.
    return text.strip() if text.isascii() else unicodedata.normalize("NFKC", text).strip()


def parse_text(
    value: object, *, required: bool = True, max_len: int = 100, what: str = "内容"
) -> str:
    """Free text as typed (full-width punctuation in names is kept), trimmed."""
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise CellError(f"{what}不能为空")
    if len(text) > max_len:
        raise CellError(f"{what}过长（{len(text)} 个字符，上限 {max_len}）")
    return text


def parse_code(value: object, *, what: str = "编码") -> str:
    """An org/outlet code; Excel may hand it over as a number, users may type full-width."""
    if isinstance(value, float) and value == int(value):
        value = int(value)
    text = parse_text(_clean(value), max_len=32, what=what)
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise CellError(f"{what}只能包含字母、数字、下划线和连字符：{text}")
    return text


_PLAIN_AMOUNT = re.compile(r"^(-?)(\d{1,3}(?:,\d{3})+|\d{1,16})(?:\.(\d{1,2}))?$")
_NUMBER = re.compile(r"^[+-]?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$")


def _decimal(value: object, what: str) -> Decimal:
    if isinstance(value, bool):
        raise CellError(f"{what}须为数字")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # openpyxl yields floats for numeric cells; repr gives the shortest exact-looking form
        return Decimal(repr(value))
    text = _clean(value).replace(" ", "")
    for sign in ("¥", "元"):
        text = text.replace(sign, "")
    if not text:
        raise CellError(f"{what}不能为空")
    negative = text.startswith("(") and text.endswith(")")  # accounting-style negative
    if negative:
        text = text[1:-1]
    if not _NUMBER.match(text):
        raise CellError(f"{what}不是有效数字：{_clean(value)}")
    try:
        number = Decimal(text.replace(",", ""))
    except InvalidOperation as exc:
        raise CellError(f"{what}不是有效数字：{_clean(value)}") from exc
    return -number if negative else number


def parse_count(value: object, *, what: str = "数量") -> int:
    """A non-negative integer count; thousands separators and full-width digits allowed."""
    if type(value) is str and value.isascii() and value.isdigit():  # the common case, fast
        count = int(value)
        if count > MAX_COUNT:
            raise CellError(f"{what}数值过大：{value}")
        return count
    number = _decimal(value, what)
    if number != number.to_integral_value():
        raise CellError(f"{what}须为整数：{_clean(value)}")
    if number < 0:
        raise CellError(f"{what}不能为负数：{_clean(value)}")
    if number > MAX_COUNT:
        raise CellError(f"{what}数值过大：{_clean(value)}")
    return int(number)


def parse_amount_fen(value: object, *, what: str = "金额") -> int:
    """Yuan to integer fen, exactly; may be negative; at most two decimals."""
    if type(value) is str and (plain := _PLAIN_AMOUNT.match(value)):  # the common case, fast
        sign, whole, cents = plain.groups()
        fen = int(whole.replace(",", "")) * 100 + int((cents or "").ljust(2, "0"))
        if fen > MAX_ABS_FEN:
            raise CellError(f"{what}数值过大：{value}")
        return -fen if sign else fen
    number = _decimal(value, what)
    fen = number * 100
    if fen != fen.to_integral_value():
        raise CellError(f"{what}最多两位小数：{_clean(value)}")
    if abs(fen) > MAX_ABS_FEN:
        raise CellError(f"{what}数值过大：{_clean(value)}")
    return int(fen)


def problems_as_rows(problems: Sequence[RowProblem]) -> list[dict[str, object]]:
    """The problems table users see and download (Chinese headers)."""
    return [
        {"行号": p.line or "整个文件", "列": p.column, "内容": p.value, "原因": p.reason}
        for p in sorted(problems, key=lambda p: (p.line, p.column))
    ]
