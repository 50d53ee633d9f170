"""Parsing one imported cell (单元格): dates inside the import window (`DateWindow`), codes,
text, counts and amounts in fen. Each parser returns the value or raises `CellError` with
the Chinese reason a user sees next to the line."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from core.platform.clock import SHANGHAI, shanghai_now
from core.platform.settings import get_settings

MAX_COUNT = 100_000_000
MAX_ABS_FEN = 10**14  # 1 万亿元: anything larger is a typo or a unit mix-up


class CellError(ValueError):
    """A cell could not be parsed; the message is the Chinese reason."""


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
