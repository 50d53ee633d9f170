"""Reading uploaded tables (CSV in UTF-8/GBK/GB18030, XLSX) and parsing their cells.

Shared by every import (org tree, metrics, merchants, channel events). The reader knows
nothing about the domain: it maps Chinese or English headers to column keys, keeps each
row's line number, and turns a broken file into `RowProblem`s a user can act on.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from core.clock import SHANGHAI, shanghai_now
from core.settings import get_settings

MAX_CELL_CHARS = 200
MAX_COUNT = 100_000_000
MAX_ABS_FEN = 10**14  # 1 万亿元: anything larger is a typo or a unit mix-up


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    aliases: tuple[str, ...] = ()
    required: bool = True

    def names(self) -> set[str]:
        return {normalize_header(n) for n in (self.key, self.zh, *self.aliases)}


@dataclass(frozen=True)
class RowProblem:
    """One reason a file was refused; line 0 means the file as a whole."""

    line: int
    column: str
    value: str
    reason: str


@dataclass
class Row:
    line: int
    cells: dict[str, object]


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass
class FileReport:
    """What an all-or-nothing import of one file found; each import adds its own counts."""

    filename: str
    dry_run: bool = False
    rows: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def refusal(self, kept: str = "数据", detail: str = "") -> str:
        return (
            f"文件未导入：发现 {len(self.problems)} 处问题{detail}，请修改后重新上传，"
            f"已有{kept}未做任何改动。"
        )


class CellError(ValueError):
    """A cell could not be parsed; the message is the Chinese reason."""


def normalize_header(name: object) -> str:
    text = unicodedata.normalize("NFKC", str(name or "")).strip().lower()
    return re.sub(r"[\s_]+", "_", text)


def read_table(data: bytes, filename: str, columns: Sequence[Column]) -> Table:
    """Rows of the first sheet / the CSV, keyed by column key, or file-level problems."""
    table = Table()
    if not data.strip():
        table.problems.append(RowProblem(0, "", "", "文件为空"))
        return table
    try:
        raw_rows = list(_xlsx_rows(data) if _is_xlsx(data) else _csv_rows(data))
    except FileFormatError as exc:
        table.problems.append(RowProblem(0, "", filename, str(exc)))
        return table
    if not raw_rows:
        table.problems.append(RowProblem(0, "", "", "文件为空"))
        return table
    header_line, header = raw_rows[0]
    positions = _map_header(header, columns, table, header_line)
    if table.problems:
        return table
    for line, values in raw_rows[1:]:
        if all(_blank(v) for v in values):
            continue
        cells: dict[str, object] = {}
        for key, pos in positions.items():
            value = values[pos] if pos < len(values) else None
            if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                table.problems.append(
                    RowProblem(
                        line,
                        key,
                        value[:30] + "…",
                        f"内容过长（{len(value)} 个字符，上限 {MAX_CELL_CHARS}）",
                    )
                )
                value = None
            cells[key] = value
        table.rows.append(Row(line, cells))
    if not table.rows and not table.problems:
        table.problems.append(RowProblem(0, "", "", "文件只有表头，没有数据行"))
    return table


class FileFormatError(ValueError):
    pass


def _is_xlsx(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _decode(data: bytes) -> str:
    if data[:4] == b"\xd0\xcf\x11\xe0":
        raise FileFormatError("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV")
    if b"\x00" in data[:4096]:
        raise FileFormatError("无法识别的文件：不是 CSV 文本或 XLSX 表格（UTF-16 请另存为 UTF-8）")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileFormatError("无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV")


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[object]]]:
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    previous_end = 0
    try:
        for values in reader:
            # A row's number is the line it starts on (a quoted cell may span several).
            start = previous_end + 1
            previous_end = reader.line_num
            yield start, list(values)
    except csv.Error as exc:
        raise FileFormatError(
            f"第 {reader.line_num} 行无法解析：单元格过长或引号不匹配（{exc}）"
        ) from exc


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[object]]]:
    from openpyxl import load_workbook  # only needed for XLSX uploads

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileFormatError("无法读取 Excel 文件，请确认是 .xlsx 格式且未损坏") from exc
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(values)
    finally:
        workbook.close()


def _map_header(
    header: list[object], columns: Sequence[Column], table: Table, line: int
) -> dict[str, int]:
    positions: dict[str, int] = {}
    by_name = {name: col for col in columns for name in col.names()}
    for pos, name in enumerate(header):
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
