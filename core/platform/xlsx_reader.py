"""Streaming XLSX reading that trusts nothing a file says about itself.

openpyxl's read-only mode pads every row to the sheet's declared `<dimension>` and loads
the shared strings and styles whole, so a 5 KB file declaring A1:XFD1048576 exhausts
memory, and a small ZIP that unpacks to gigabytes runs for minutes. Here the ZIP directory
is checked first (member sizes, compression ratios); then only the parts a table needs are
parsed with expat, chunk by chunk: DTDs and oversized tokens are refused, only cells with
content are kept, rows, columns and cell lengths are checked as they arrive, and the shared
strings live in one compact buffer. Values come out as openpyxl's `data_only` mode gives
them (numbers, dates for date-formatted cells, booleans, text), except that a formula
saved without its computed value becomes `FORMULA_WITHOUT_VALUE` instead of None.
"""

from __future__ import annotations

import io
import math
import posixpath
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import product
from string import ascii_uppercase
from xml.parsers import expat

from core.platform.read_limits import (
    FORMULA_WITHOUT_VALUE,
    MB,
    FileFormatError,
    ReadLimits,
    too_many_columns,
    too_many_rows,
)

_MAIN_NS = (
    "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "http://purl.oclc.org/ooxml/spreadsheetml/main",
)
_PACKAGE_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_RID_ATTRS = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships id",
    "http://purl.oclc.org/ooxml/officeDocument/relationships id",
)

EXCEL_MAX_CELL_CHARS = 32_767  # Excel itself cannot hold more in one cell
_MAX_TOKEN = MB  # no tag, comment or name in a real workbook comes near this
_MAX_DIRECTORY = MB  # the ZIP's central directory: a workbook has a few dozen members
_RATIO_FLOOR = MB  # members smaller than this cannot hurt, whatever their ratio
_MAX_FORMATS = 65_536  # Excel allows 64,000 cell formats
_MAX_SHEETS = 256  # only the first worksheet is read; later ones need not be listed
_BASE_ELEMENTS = 1_000_000  # workbook, relationships and styles of a real file need far less
# Decoded shared strings kept, so that a value repeated down a column is one str object.
_CACHE_STRINGS = 65_536
_CACHE_CHARS = 4_000_000
_CHUNK = 64 * 1024
_BROKEN = "无法读取 Excel 文件，请确认是 .xlsx 格式且未损坏"

# Column letters A … XFD to their 1-based numbers, for cell references like "AB12".
_COLUMNS = {
    "".join(letters): number
    for number, letters in enumerate(
        (combo for size in (1, 2, 3) for combo in product(ascii_uppercase, repeat=size)),
        start=1,
    )
    if number <= 16_384
}


def _tags(*names: str) -> dict[str, str]:
    return {f"{ns} {name}": name for ns in _MAIN_NS for name in names}


def xlsx_rows(data: bytes, limits: ReadLimits) -> Iterator[tuple[int, dict[int, object]]]:
    """(row number, {0-based column: value}) for each row of the first worksheet that holds
    a value, in order; raises FileFormatError as soon as the file oversteps `limits`."""
    budget = _Budget(4 * limits.max_cells + 2 * (limits.max_rows + 1) + _BASE_ELEMENTS)
    with _open(data, limits) as archive:
        parts = _locate(archive, budget)
        strings = _read_strings(archive, parts.strings, limits, budget)
        date_styles = _read_date_styles(archive, parts.styles, budget)
        sheet = _SheetReader(strings, date_styles, parts.epoch, limits, budget.left)
        parser = _parser(sheet.start, sheet.end, sheet.text)
        for _ in _feed(archive, parts.sheet, parser):
            if sheet.ready:
                yield from sheet.ready
                sheet.ready.clear()


# --- the ZIP container -------------------------------------------------------------------


def _open(data: bytes, limits: ReadLimits) -> zipfile.ZipFile:
    """The archive, once its directory shows nothing that unpacks beyond `limits`."""
    _check_directory_size(data)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise FileFormatError(_BROKEN) from exc
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if total > limits.max_uncompressed:
            archive.close()
            raise FileFormatError(
                f"Excel 文件解压后过大（超过 {limits.max_uncompressed / MB:g} MB），"
                "请删除无关的工作表和图片，或拆分后分批导入"
            )
        if info.file_size > _RATIO_FLOOR and info.file_size > limits.max_ratio * info.compress_size:
            archive.close()
            ratio = info.file_size // max(info.compress_size, 1)
            raise FileFormatError(
                f"Excel 文件压缩比异常（{info.filename[:60]} 解压后是压缩大小的 {ratio} 倍，"
                f"上限 {limits.max_ratio} 倍），疑似压缩炸弹，已拒绝"
            )
    return archive


def _check_directory_size(data: bytes) -> None:
    # zipfile builds an object per directory entry before anything else can be checked.
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65_535))
    if end >= 0 and len(data) >= end + 16:
        size = int.from_bytes(data[end + 12 : end + 16], "little")
        if size > _MAX_DIRECTORY:
            raise FileFormatError("Excel 文件结构异常（压缩包目录过大），无法读取")


def _parser(
    start: Callable[[str, dict[str, str]], None],
    end: Callable[[str], None] = lambda name: None,
    text: Callable[[str], None] = lambda data: None,
) -> expat.XMLParserType:
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _refuse_dtd  # no entities, so no entity expansion
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    # Every event moves CurrentByteIndex, which _feed uses to spot a runaway token.
    parser.CommentHandler = lambda data: None
    parser.ProcessingInstructionHandler = lambda target, data: None
    return parser


@dataclass
class _Budget:
    """XML elements the workbook may still hold. Parsing time follows the element count,
    and a soup of empty or unknown elements holds nothing an import needs: refuse it."""

    left: int

    def counting(
        self, start: Callable[[str, dict[str, str]], None]
    ) -> Callable[[str, dict[str, str]], None]:
        def counted(name: str, attrs: dict[str, str]) -> None:
            self.left -= 1
            if self.left < 0:
                raise FileFormatError(_TOO_MANY_ELEMENTS)
            start(name, attrs)

        return counted


_TOO_MANY_ELEMENTS = "Excel 文件结构异常（XML 标记过多），请另存为新的 .xlsx 或 CSV 后再上传"


def _refuse_dtd(*_args: object) -> None:
    raise FileFormatError("Excel 文件含有不允许的 XML 声明（DTD），已拒绝")


def _feed(archive: zipfile.ZipFile, name: str, parser: expat.XMLParserType) -> Iterator[None]:
    """Parse one member chunk by chunk, pausing after each chunk for the caller."""
    try:
        info = archive.getinfo(name)
    except KeyError as exc:
        raise FileFormatError(_BROKEN) from exc
    if info.flag_bits & 0x1:
        raise FileFormatError("Excel 文件已加密，请取消密码后另存再上传")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise FileFormatError(_BROKEN)
    fed = 0
    try:
        with archive.open(info) as member:  # never yields more than the checked file_size
            while chunk := member.read(_CHUNK):
                parser.Parse(chunk, False)
                fed += len(chunk)
                # expat buffers an unfinished tag, comment or name whole: refuse a huge one.
                if fed - parser.CurrentByteIndex > _MAX_TOKEN:
                    raise FileFormatError(
                        f"Excel 文件结构异常（{name[:60]} 含有超长的标记），无法读取"
                    )
                yield
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise FileFormatError(
            f"Excel 文件已损坏（{name[:60]} 第 {exc.lineno} 行无法解析）"
        ) from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as exc:
        raise FileFormatError(_BROKEN) from exc
    yield


def _parse(archive: zipfile.ZipFile, name: str, parser: expat.XMLParserType) -> None:
    for _ in _feed(archive, name, parser):
        pass


# --- the workbook's structure ------------------------------------------------------------


@dataclass
class _Parts:
    sheet: str
    strings: str | None
    styles: str | None
    epoch: datetime


def _locate(archive: zipfile.ZipFile, budget: _Budget) -> _Parts:
    from openpyxl.utils.datetime import CALENDAR_MAC_1904, WINDOWS_EPOCH

    root = _relationships(archive, "_rels/.rels", "", budget)
    workbook = next(
        (target for kind, _id, target in root if kind == "officeDocument"), "xl/workbook.xml"
    )
    book = _Workbook()
    _parse(archive, workbook, _parser(budget.counting(book.start)))
    folder, base = posixpath.split(workbook)
    rels = _relationships(archive, posixpath.join(folder, "_rels", f"{base}.rels"), folder, budget)
    sheets = {rid: target for kind, rid, target in rels if kind == "worksheet"}
    sheet = next((sheets[rid] for rid in book.sheet_ids if rid in sheets), None)
    if sheet is None:
        raise FileFormatError("Excel 文件中没有工作表")
    by_kind = {kind: target for kind, _id, target in reversed(rels)}
    return _Parts(
        sheet,
        by_kind.get("sharedStrings"),
        by_kind.get("styles"),
        CALENDAR_MAC_1904 if book.date1904 else WINDOWS_EPOCH,
    )


@dataclass
class _Workbook:
    sheet_ids: list[str] = field(default_factory=list)
    date1904: bool = False

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = _WORKBOOK_TAGS.get(name)
        if tag == "sheet" and len(self.sheet_ids) < _MAX_SHEETS:
            rid = attrs.get(_RID_ATTRS[0]) or attrs.get(_RID_ATTRS[1])
            if rid:
                self.sheet_ids.append(rid)
        elif tag == "workbookPr":
            self.date1904 = attrs.get("date1904", "").lower() in ("1", "true")


_WORKBOOK_TAGS = _tags("sheet", "workbookPr")
_WANTED_RELATIONS = {"officeDocument", "worksheet", "sharedStrings", "styles"}


def _relationships(
    archive: zipfile.ZipFile, path: str, folder: str, budget: _Budget
) -> list[tuple[str, str, str]]:
    """(kind, id, member path) of the relationships a table needs; none if the file is absent."""
    if not _exists(archive, path):
        return []
    found: list[tuple[str, str, str]] = []
    tag = f"{_PACKAGE_RELS_NS} Relationship"

    def start(name: str, attrs: dict[str, str]) -> None:
        kind = attrs.get("Type", "").rsplit("/", 1)[-1]
        if name != tag or kind not in _WANTED_RELATIONS or attrs.get("TargetMode") == "External":
            return
        if len(found) < _MAX_SHEETS:
            found.append((kind, attrs.get("Id", ""), _resolve(folder, attrs.get("Target", ""))))

    _parse(archive, path, _parser(budget.counting(start)))
    return found


def _exists(archive: zipfile.ZipFile, path: str) -> bool:
    try:
        archive.getinfo(path)
    except KeyError:
        return False
    return True


def _resolve(folder: str, target: str) -> str:
    if target.startswith("/"):
        return posixpath.normpath(target).lstrip("/")
    return posixpath.normpath(posixpath.join(folder, target))


# --- shared strings and date formats -----------------------------------------------------


class _SharedStrings:
    """Every shared string in one UTF-8 buffer: a str per entry would cost about 60 bytes
    of overhead each, and a hostile table can list millions of tiny strings."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("Q")
        self._cache: dict[int, str] = {}
        self._cached_chars = 0

    def __len__(self) -> int:
        return len(self._ends)

    def add(self, text: str) -> None:
        self._data += text.encode()
        self._ends.append(len(self._data))

    def get(self, reference: str) -> str:
        try:
            index = int(reference)
        except ValueError:
            index = -1
        text = self._cache.get(index)
        if text is not None:
            return text
        if not 0 <= index < len(self._ends):
            raise FileFormatError("Excel 文件已损坏（引用了不存在的共享字符串）")
        start = self._ends[index - 1] if index else 0
        text = self._data[start : self._ends[index]].decode()
        if len(self._cache) < _CACHE_STRINGS and self._cached_chars < _CACHE_CHARS:
            self._cache[index] = text
            self._cached_chars += len(text)
        return text


class _StringTableReader:
    def __init__(self, limits: ReadLimits) -> None:
        self.strings = _SharedStrings()
        self.limit = limits.max_cells
        self.text_left = limits.max_text_chars
        self.parts: list[str] = []
        self.length = 0
        self.collecting = False
        self.phonetic = 0  # inside <rPh>: furigana, not part of the text

    def start(self, name: str, attrs: dict[str, str]) -> None:
        tag = _STRING_TAGS.get(name)
        if tag == "si":
            self.parts, self.length = [], 0
        elif tag == "t":
            self.collecting = not self.phonetic
        elif tag == "rPh":
            self.phonetic += 1

    def end(self, name: str) -> None:
        tag = _STRING_TAGS.get(name)
        if tag == "t":
            self.collecting = False
        elif tag == "rPh":
            self.phonetic -= 1
        elif tag == "si":
            if len(self.strings) >= self.limit:
                raise FileFormatError(
                    f"Excel 文件的共享字符串超过上限（{self.limit:,} 个），请拆分后分批导入"
                )
            self.strings.add("".join(self.parts))

    def text(self, data: str) -> None:
        if self.collecting:
            self.length += len(data)
            self.text_left -= len(data)
            if self.length > EXCEL_MAX_CELL_CHARS:
                raise FileFormatError(_cell_too_long())
            if self.text_left < 0:
                raise FileFormatError("Excel 文件中的文字总量超过上限，请拆分后分批导入")
            self.parts.append(data)


_STRING_TAGS = _tags("si", "t", "rPh")


def _read_strings(
    archive: zipfile.ZipFile, path: str | None, limits: ReadLimits, budget: _Budget
) -> _SharedStrings:
    reader = _StringTableReader(limits)
    if path and _exists(archive, path):
        _parse(archive, path, _parser(budget.counting(reader.start), reader.end, reader.text))
    return reader.strings


def _read_date_styles(
    archive: zipfile.ZipFile, path: str | None, budget: _Budget
) -> dict[str, bool]:
    """Style index (as written in a cell's s="…") -> whether it is a duration format, for
    every cell style that shows a number as a date or time."""
    from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

    formats: dict[str, str] = {}
    cell_formats: list[str] = []
    inside = [False]  # in <cellXfs>, not <cellStyleXfs>

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = _STYLE_TAGS.get(name)
        if (tag == "xf" and inside[0]) or tag == "numFmt":
            if len(formats) + len(cell_formats) >= _MAX_FORMATS:
                raise FileFormatError("Excel 文件的单元格格式过多，无法读取")
            if tag == "xf":
                cell_formats.append(attrs.get("numFmtId", "0"))
            else:
                formats[attrs.get("numFmtId", "")] = attrs.get("formatCode", "")
        elif tag == "cellXfs":
            inside[0] = True

    def end(name: str) -> None:
        if _STYLE_TAGS.get(name) == "cellXfs":
            inside[0] = False

    if path and _exists(archive, path):
        _parse(archive, path, _parser(budget.counting(start), end))
    dates: dict[str, bool] = {}
    for index, format_id in enumerate(cell_formats):
        code = formats.get(format_id)
        if code is None and format_id.isdigit():
            code = BUILTIN_FORMATS.get(int(format_id))
        if is_date_format(code):
            dates[str(index)] = is_timedelta_format(code)
    return dates


_STYLE_TAGS = _tags("numFmt", "xf", "cellXfs")


# --- the worksheet -----------------------------------------------------------------------


class _SheetReader:
    """expat handlers that collect finished rows in `ready`, keeping only cells with a
    value; every limit is checked the moment a row or cell arrives."""

    def __init__(
        self,
        strings: _SharedStrings,
        date_styles: dict[str, bool],
        epoch: datetime,
        limits: ReadLimits,
        elements: int,
    ) -> None:
        self.elements = elements  # left in the budget
        self.strings = strings
        self.date_styles = date_styles
        self.epoch = epoch
        self.limits = limits
        self.max_line = limits.max_rows + 1
        self.max_columns = limits.max_columns
        self.ready: list[tuple[int, dict[int, object]]] = []
        self.line = 0
        self.in_row = False
        self.cells: dict[int, object] = {}
        self.column = 0
        self.kind = "n"
        self.style: str | None = None
        self.formula = False
        self.parts: list[str] = []
        self.length = 0
        self.collecting = False
        self.inline = False
        self.phonetic = 0

    # start/end/text run for every element of a sheet of millions: the common tags come
    # first and the cell steps are inlined.
    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.elements -= 1
        if self.elements < 0:
            raise FileFormatError(_TOO_MANY_ELEMENTS)
        tag = _SHEET_TAGS.get(name)
        if tag is None:
            return
        if tag == "c":
            if not self.in_row:
                return
            reference = attrs.get("r")
            if reference:
                column = _COLUMNS.get(reference.rstrip("0123456789"))
                if column is None:
                    raise FileFormatError(
                        f"Excel 工作表结构异常（单元格位置 {reference[:20]} 无效）"
                    )
                self.column = column
            else:
                self.column += 1
            self.kind = attrs.get("t", "n")
            self.style = attrs.get("s")
            self.formula = self.inline = self.collecting = False
            self.parts = []
            self.length = 0
        elif tag == "v":
            self.collecting = True
        elif tag == "row":
            self._start_row(attrs.get("r"))
        elif tag == "t":
            self.collecting = self.inline and not self.phonetic
        elif tag == "f":
            self.formula = True
        elif tag == "is":
            self.inline = True
        elif tag == "rPh":
            self.phonetic += 1

    def end(self, name: str) -> None:
        tag = _SHEET_TAGS.get(name)
        if tag is None:
            return
        if tag == "c":
            if not self.in_row:
                return
            value = self._value("".join(self.parts))
            if value is None or value == "":
                return
            if self.column > self.max_columns:
                raise FileFormatError(too_many_columns(self.line, self.limits))
            self.cells[self.column - 1] = value
        elif tag == "v" or tag == "t":
            self.collecting = False
        elif tag == "row":
            self.in_row = False
            if self.cells:
                self.ready.append((self.line, self.cells))
                self.cells = {}
        elif tag == "is":
            self.inline = False
        elif tag == "rPh":
            self.phonetic -= 1

    def text(self, data: str) -> None:
        if self.collecting:
            self.length += len(data)
            if self.length > EXCEL_MAX_CELL_CHARS:
                raise FileFormatError(f"第 {self.line} 行：{_cell_too_long()}")
            self.parts.append(data)

    def _start_row(self, number: str | None) -> None:
        try:
            line = int(number) if number else self.line + 1
        except ValueError:
            line = 0
        if line <= self.line:
            raise FileFormatError(
                f"Excel 工作表结构异常（第 {self.line} 行之后的行号 {number} 无效）"
            )
        if line > self.max_line:
            raise FileFormatError(too_many_rows(line, self.limits))
        self.line, self.in_row, self.column = line, True, 0

    def _value(self, text: str) -> object:
        kind = self.kind
        if not text:
            # A formula's result is stored next to it; openpyxl and scripts save none.
            if self.formula and kind != "str" and kind != "inlineStr":
                return FORMULA_WITHOUT_VALUE
            return None
        if kind == "n":
            return self._number(text)
        if kind == "s":
            return self.strings.get(text)
        if kind == "inlineStr":
            return text
        if kind == "b":
            return text.strip() in ("1", "true")
        if kind == "d":
            from openpyxl.utils.datetime import from_ISO8601

            try:
                return from_ISO8601(text)
            except ValueError:
                return text
        return text  # "str" (a formula's text result), "e" (an error such as #DIV/0!)

    def _number(self, text: str) -> object:
        try:
            number = float(text) if "." in text or "e" in text or "E" in text else int(text)
        except ValueError:
            return text  # the import's own parser names the cell and the reason
        if isinstance(number, float) and not math.isfinite(number):
            return text
        duration = self.date_styles.get(self.style) if self.style else None
        if duration is None:
            return number
        from openpyxl.utils.datetime import from_excel

        try:
            return from_excel(number, self.epoch, timedelta=duration)
        except (OverflowError, ValueError):
            return number


_SHEET_TAGS = _tags("row", "c", "v", "f", "is", "t", "rPh")


def _cell_too_long() -> str:
    return f"单元格内容超过 Excel 的上限（{EXCEL_MAX_CELL_CHARS:,} 个字符），文件可能已损坏"
