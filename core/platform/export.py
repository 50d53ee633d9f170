"""The one encoder for every exported table (CSV and XLSX downloads, CLI CSV output).

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (and, in some programs, a
tab or carriage return) as a formula, so a merchant or outlet named `=HYPERLINK(…)` would
become a live formula in the file an admin opens. Following OWASP's advice on CSV
injection, every text cell that starts with one of those characters gets a leading single
quote; numbers are kept as numbers by type, so a real negative amount stays numeric while
the *text* "-12" is neutralised. XLSX strings are written as string cells, never formulas.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TextIO

import numpy as np

from core.platform.clock import to_shanghai

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_MIME = "text/csv"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Cell = str | int | float | Decimal | bool | date | None
Rows = Iterable[Sequence[object]]


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


def safe_text(text: str) -> str:
    """The text as a spreadsheet shows it and never runs it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_cell(value: object) -> Cell:
    """One exported value: numbers, booleans and dates keep their type; text is neutralised;
    missing values (None, NaN, NaT) become empty cells."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.generic):  # what pandas and numpy hand over
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime):
        # Excel has no time zones: write Shanghai wall-clock time, like the pages show it.
        return to_shanghai(value).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return value
    return safe_text(value if isinstance(value, str) else str(value))


def _safe_rows(header: Sequence[str], rows: Rows) -> Iterable[list[Cell]]:
    yield [safe_cell(name) for name in header]
    for row in rows:
        yield [safe_cell(value) for value in row]


def write_csv(stream: TextIO, header: Sequence[str], rows: Rows) -> None:
    """CSV text onto a stream (the CLI's stdout): no BOM, one line per row."""
    # CRLF as RFC 4180 says: with it the writer also quotes a field holding a lone CR, which
    # a spreadsheet would otherwise take for a new row (and run the rest of it).
    writer = csv.writer(stream, lineterminator="\r\n")
    for row in _safe_rows(header, rows):
        writer.writerow("" if value is None else value for value in row)


def to_csv_bytes(header: Sequence[str], rows: Rows) -> bytes:
    """A CSV download: UTF-8 with a BOM, so Excel reads the Chinese correctly."""
    text = io.StringIO()
    write_csv(text, header, rows)
    return text.getvalue().encode("utf-8-sig")


def to_xlsx_bytes(header: Sequence[str], rows: Rows, *, sheet: str = "Sheet1") -> bytes:
    """An XLSX download: one sheet, a bold header row, text always stored as text."""
    return to_xlsx_workbook([(sheet, header, rows)])


def to_xlsx_workbook(sheets: Sequence[tuple[str, Sequence[str], Rows]]) -> bytes:
    """An XLSX workbook of several sheets (name, header, rows), each encoded like
    `to_xlsx_bytes`."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for sheet, header, rows in sheets:
        worksheet = book.create_sheet(sheet)

        def text_cell(value: str, font: Font | None = None, worksheet=worksheet) -> WriteOnlyCell:
            item = WriteOnlyCell(worksheet, value=value)
            item.data_type = "s"  # "#N/A" and the like would otherwise be typed error codes
            if font:
                item.font = font
            return item

        def cell(value: Cell, text_cell=text_cell) -> Cell | WriteOnlyCell:
            if not isinstance(value, str):
                return value
            # openpyxl refuses control characters; dropping them may uncover a formula start.
            text = safe_text(ILLEGAL_CHARACTERS_RE.sub("", value))
            # A plain str is much cheaper than a cell object, and openpyxl types it as a
            # string unless it starts with "=" (safe_text saw to that) or is an error code.
            return text_cell(text) if text.startswith("#") else text

        safe = iter(_safe_rows(header, rows))
        worksheet.append(
            [
                text_cell(safe_text(ILLEGAL_CHARACTERS_RE.sub("", str(v or ""))), bold)
                for v in next(safe)
            ]
        )
        for row in safe:
            worksheet.append([cell(value) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def encode(header: Sequence[str], rows: Rows, fmt: Format | str) -> tuple[bytes, str]:
    """(file bytes, MIME type) of a table in the given format."""
    if Format(fmt) is Format.CSV:
        return to_csv_bytes(header, rows), CSV_MIME
    return to_xlsx_bytes(header, rows), XLSX_MIME


def frame_table(frame: Any) -> tuple[list[str], list[list[object]]]:
    """(header, rows) of a pandas DataFrame, with its missing values as None."""
    values = frame.astype(object).where(frame.notna(), None)
    return [str(c) for c in frame.columns], [
        list(r) for r in values.itertuples(index=False, name=None)
    ]
