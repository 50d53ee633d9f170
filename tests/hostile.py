"""Hostile import files, built small and fast so the tests stay light: each is what a
careless export or an attacker could upload, and each must be refused in seconds."""

from __future__ import annotations

import io
import re
import resource
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from openpyxl import Workbook

SHEET = "xl/worksheets/sheet1.xml"
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
METRICS_HEADER = [
    "日期",
    "网点编码",
    "新增好友",
    "好友总数",
    "客户群数",
    "群成员数",
    "转化客户",
    "新增存款(元)",
]
MB = 1024 * 1024


def metrics_xlsx(*rows: list[object], header: Sequence[str] = METRICS_HEADER) -> bytes:
    """A normal workbook written by openpyxl: the header, then `rows`."""
    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def replace_members(data: bytes, members: dict[str, Iterable[bytes]]) -> bytes:
    """The same workbook with some members' XML replaced, written chunk by chunk (so a
    member of hundreds of MB never exists in memory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename in members:
                continue
            target.writestr(info, source.read(info), compress_type=zipfile.ZIP_DEFLATED)
        for name, chunks in members.items():
            member = zipfile.ZipInfo(name)
            member.compress_type = zipfile.ZIP_DEFLATED
            with target.open(member, "w", force_zip64=True) as stream:
                for chunk in chunks:
                    stream.write(chunk)
    return out.getvalue()


def member(data: bytes, name: str) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name).decode()


def sheet_xml(data: bytes) -> str:
    return member(data, SHEET)


@cache
def dimension_bomb(header: tuple[str, ...] = tuple(METRICS_HEADER)) -> bytes:
    """~5 KB: a valid header, a sheet declaring A1:XFD1048576 and one cell at row 1,048,576
    (openpyxl's read-only mode pads every row to the declared width)."""
    data = metrics_xlsx(header=header)
    xml = sheet_xml(data)
    xml = re.sub(r'<dimension ref="[^"]*"\s*/>', '<dimension ref="A1:XFD1048576"/>', xml)
    xml = xml.replace(
        "</sheetData>", '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>'
    )
    return replace_members(data, {SHEET: [xml.encode()]})


@cache
def zip_bomb(unpacked_mb: int = 400) -> bytes:
    """A few MB that unpack to `unpacked_mb` MB of sheet XML: rows of repeated cells."""
    xml = sheet_xml(metrics_xlsx())
    head, tail = xml.split("</sheetData>")
    row = b"<row><c><v>1</v></c><c><v>1</v></c><c><v>1</v></c><c><v>1</v></c></row>"
    block = row * (MB // len(row))

    def chunks() -> Iterable[bytes]:
        yield head.encode()
        for _ in range(unpacked_mb):
            yield block
        yield b"</sheetData>" + tail.encode()

    return replace_members(metrics_xlsx(), {SHEET: chunks()})


def billion_laughs() -> bytes:
    """Entity expansion inside the sheet XML."""
    entities = '<!ENTITY a0 "ha">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    )
    xml = sheet_xml(metrics_xlsx(["2026-11-08", "O111", 1, 1, 1, 1, 1, 1]))
    xml = xml.replace("<worksheet", f"<!DOCTYPE worksheet [{entities}]><worksheet", 1)
    xml = xml.replace("<t>O111</t>", "<t>&a9;</t>")
    return replace_members(metrics_xlsx(), {SHEET: [xml.encode()]})


def csv_with(header: str, body: Iterable[bytes]) -> bytes:
    return header.encode() + b"".join(body)


CSV_HEADER = ",".join(METRICS_HEADER) + "\n"
GOOD_CSV_ROW = b"2026-11-08,O111,1,10,1,5,0,100\n"


def csv_long_line(megabytes: int = 15) -> bytes:
    """A header, a good row, then one line of `megabytes` MB of short cells."""
    return csv_with(CSV_HEADER, [GOOD_CSV_ROW, b"1," * (megabytes * MB // 2), b"\n"])


def csv_million_columns() -> bytes:
    """A row of a million commas with a value at its end."""
    return csv_with(CSV_HEADER, [GOOD_CSV_ROW, b"," * 1_000_000, b"x\n"])


def csv_empty_lines(count: int = 15_000_000) -> bytes:
    """A good row, then millions of empty lines (15 MB), then another row."""
    return csv_with(CSV_HEADER, [GOOD_CSV_ROW, b"\n" * count, GOOD_CSV_ROW])


def with_sheet(data: bytes, edit: dict[str, str]) -> bytes:
    """The workbook with its sheet XML edited: each key replaced by its value."""
    xml = sheet_xml(data)
    for old, new in edit.items():
        assert old in xml, old
        xml = xml.replace(old, new)
    return replace_members(data, {SHEET: [xml.encode()]})


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@contextmanager
def memory_cap(headroom_mb: int = 1536) -> Iterator[None]:
    """Cap this process's address space for a block: if the reader regresses, the test
    fails with a MemoryError instead of taking the machine's memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + headroom_mb * MB, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")
