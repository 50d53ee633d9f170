"""What a file import accepts (`ReadLimits`) and the reasons it gives when a file goes
beyond them: shared by the CSV reader (`tabular`) and the XLSX reader (`xlsx_reader`)."""

from __future__ import annotations

from dataclasses import dataclass

from core.platform.errors import DomainError

MAX_CELL_CHARS = 200
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


def too_many_rows(line: int, limits: ReadLimits) -> str:
    """The reason a file is refused at its first line beyond `max_rows` (CSV and XLSX)."""
    return f"行数过多：第 {line} 行超出上限（最多 {limits.max_rows:,} 行数据），请拆分后分批导入"


def too_many_columns(line: int, limits: ReadLimits) -> str:
    """The reason a file is refused at a cell with content right of `max_columns`."""
    return f"列数过多：第 {line} 行有内容超出第 {limits.max_columns} 列，请删除多余的列"
