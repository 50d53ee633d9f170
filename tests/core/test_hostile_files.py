"""Imports are bounded by what a file holds, never by what it declares: hostile XLSX and CSV
files are refused quickly, with a Chinese reason, in bounded memory, and nothing is written."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from core.campaigns import merchants
from core.campaigns.merchants import import_merchants
from core.channels import funnel
from core.channels.funnel import import_events
from core.metrics.importing import import_metrics
from core.platform import org_import
from core.platform.org_import import import_org
from core.platform.read_limits import FORMULA_REASON, MB, ReadLimits
from core.platform.tabular import Column, read_table
from db.engine import get_engine
from db.models import DailyMetric, Merchant, OrgUnit, Role
from tests import hostile
from tests.factories import make_tree, make_users

ROOT = Path(__file__).parents[2]
COLUMNS = (Column("date", "日期"), Column("outlet_code", "网点编码"))
PEAK_MB = 64  # Python allocations while refusing any of these files, far below 500 MB


def _metric_rows(session: Session) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(DailyMetric)).scalar_one()


def _refuse(session: Session, data: bytes, filename: str = "hostile.xlsx"):
    """import_metrics on a hostile file, under a memory cap, with its Python peak."""
    _, users = make_tree(session), make_users(session)
    tracemalloc.start()
    try:
        with hostile.memory_cap():
            report = import_metrics(session, actor=users[Role.ADMIN], data=data, filename=filename)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not report.ok
    assert _metric_rows(session) == 0
    assert peak < PEAK_MB * MB, f"peak {peak / MB:.0f} MB"
    return report


def _file_problem(report) -> str:
    """The single whole-file reason (line 0) of a refused report."""
    assert [(p.line, p.column) for p in report.problems] == [(0, "")], report.problems[:5]
    return report.problems[0].reason


# --- XLSX --------------------------------------------------------------------------------


def test_a_declared_dimension_is_not_trusted(session: Session) -> None:
    data = hostile.dimension_bomb()
    assert len(data) < 10_000
    reason = _file_problem(_refuse(session, data))
    assert "行数过多" in reason and "1048576" in reason and "200,000" in reason


def test_a_zip_bomb_is_refused_from_the_zip_directory(session: Session) -> None:
    data = hostile.zip_bomb(400)
    assert len(data) < 3 * MB
    assert "解压后过大" in _file_problem(_refuse(session, data))


def test_a_member_that_unpacks_hundreds_of_times_its_size_is_refused(session: Session) -> None:
    # 100 MB fits the total size limit; its compression ratio gives it away.
    reason = _file_problem(_refuse(session, hostile.zip_bomb(100)))
    assert "压缩比异常" in reason and "sheet1.xml" in reason


def test_entity_expansion_is_refused(session: Session) -> None:
    assert "DTD" in _file_problem(_refuse(session, hostile.billion_laughs()))


def test_a_formula_without_its_value_is_named_not_called_empty(session: Session) -> None:
    data = hostile.metrics_xlsx(["2026-11-08", "O111", "=1+1", 10, 1, 5, 0, 100])
    report = _refuse(session, data)
    assert [(p.line, p.column, p.reason) for p in report.problems] == [
        (2, "新增好友", FORMULA_REASON)
    ]


def test_a_formula_with_its_computed_value_is_imported(session: Session) -> None:
    data = hostile.with_sheet(
        hostile.metrics_xlsx(["2026-11-08", "O111", "=1+1", 10, 1, 5, 0, 100]),
        {"<f>1+1</f><v />": "<f>1+1</f><v>2</v>"},
    )
    _, users = make_tree(session), make_users(session)
    report = import_metrics(session, actor=users[Role.ADMIN], data=data, filename="m.xlsx")
    assert report.ok, report.problems
    assert session.execute(sa.select(DailyMetric.new_friends)).scalar_one() == 2


def test_shared_strings_rich_text_and_dates_read_like_excel_wrote_them() -> None:
    # Excel keeps text in a shared table (rich runs, phonetic hints) and marks dates by style.
    strings = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3">'
        "<si><t>日期</t></si><si><t>网点编码</t></si>"
        "<si><r><t>O1</t></r><r><rPr><b/></rPr><t>11</t></r>"
        '<rPh sb="0" eb="2"><t>ふり</t></rPh></si></sst>'
    )
    data = hostile.with_sheet(
        hostile.metrics_xlsx([datetime(2026, 11, 8), "z"], header=["x", "y"]),
        {
            '<c r="A1" t="inlineStr"><is><t>x</t></is></c>': '<c r="A1" t="s"><v>0</v></c>',
            '<c r="B1" t="inlineStr"><is><t>y</t></is></c>': '<c r="B1" t="s"><v>1</v></c>',
            '<dimension ref="A1:B2" />': '<dimension ref="A1:B3" />',
            '<row r="2"><c r="A2"': '<row r="3"><c r="A3"',
            '<c r="B2" t="inlineStr"><is><t>z</t></is></c>': '<c r="B3" t="s"><v>2</v></c>',
        },
    )
    rels = (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="/xl/worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/styles" Target="styles.xml"/>'
        '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    )
    types = hostile.member(data, "[Content_Types].xml").replace(
        "</Types>",
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    )
    data = hostile.replace_members(
        data,
        {
            "xl/sharedStrings.xml": [strings.encode()],
            "xl/_rels/workbook.xml.rels": [rels.encode()],
            "[Content_Types].xml": [types.encode()],
        },
    )
    table = read_table(data, "m.xlsx", COLUMNS)
    assert not table.problems
    assert [(r.line, str(r.cells["date"]), r.cells["outlet_code"]) for r in table.rows] == [
        (3, "2026-11-08 00:00:00", "O111")
    ]


@pytest.mark.parametrize(
    ("limits", "rows", "reason"),
    [
        (ReadLimits(max_rows=2), [["2026-11-08", "O1"]] * 3, "行数过多"),
        (ReadLimits(max_columns=3), [["2026-11-08", "O1", None, "x"]], "列数过多"),
        (ReadLimits(max_cells=5), [["2026-11-08", "O1"]] * 3, "单元格总数超过上限"),
        (
            ReadLimits(max_bytes=20_000, max_cell_chars=9_000),
            [["2026-11-08", "O1" * 3000]] * 5,
            "文字总量",
        ),
        (ReadLimits(max_uncompressed=4_000), [["2026-11-08", "O1"]], "解压后过大"),
        (ReadLimits(max_bytes=1_000), [["2026-11-08", "O1"]], "文件过大"),
    ],
)
def test_every_xlsx_limit_refuses_the_whole_file(
    limits: ReadLimits, rows: list[list[object]], reason: str
) -> None:
    data = hostile.metrics_xlsx(*rows, header=["日期", "网点编码"])
    table = read_table(data, "m.xlsx", COLUMNS, limits)
    assert table.rows == []
    assert [p.line for p in table.problems] == [0] and reason in table.problems[0].reason


def test_a_cell_longer_than_excel_allows_is_refused() -> None:
    data = hostile.with_sheet(
        hostile.metrics_xlsx(["2026-11-08", "O1"], header=["日期", "网点编码"]),
        {"<t>O1</t>": f"<t>{'长' * 40_000}</t>"},
    )
    reason = read_table(data, "m.xlsx", COLUMNS).problems[0].reason
    assert "32,767" in reason


def _sheet_with(xml: str) -> bytes:
    """A workbook whose sheet data holds `xml` after the header row."""
    return hostile.with_sheet(
        hostile.metrics_xlsx(header=["日期", "网点编码"]), {"</sheetData>": xml + "</sheetData>"}
    )


def test_a_runaway_tag_is_refused_before_expat_buffers_it() -> None:
    data = _sheet_with(f'<row r="2"><c r="A2" x="{"a" * 3 * MB}"/></row>')
    tracemalloc.start()
    try:
        table = read_table(data, "m.xlsx", COLUMNS, ReadLimits(max_ratio=100_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "超长的标记" in table.problems[0].reason and peak < 16 * MB


def test_a_soup_of_empty_elements_is_refused() -> None:
    data = _sheet_with("<x/>" * 1_100_000)
    limits = ReadLimits(max_ratio=100_000, max_cells=10, max_rows=10)
    assert "XML 标记过多" in read_table(data, "m.xlsx", COLUMNS, limits).problems[0].reason


def _with_parts(parts: dict[str, str]) -> bytes:
    """A small workbook with extra or replaced parts (shared strings, styles) wired in."""
    data = hostile.metrics_xlsx(["2026-11-08", "O1"], header=["日期", "网点编码"])
    rels = hostile.member(data, "xl/_rels/workbook.xml.rels").replace(
        "</Relationships>",
        '<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
    )
    members = {name: [xml.encode()] for name, xml in parts.items()}
    return hostile.replace_members(data, {**members, "xl/_rels/workbook.xml.rels": [rels.encode()]})


def test_a_shared_string_table_bomb_is_refused() -> None:
    many = "<si><t>x</t></si>" * 50_000
    data = _with_parts({"xl/sharedStrings.xml": f'<sst xmlns="{hostile.MAIN_NS}">{many}</sst>'})
    limits = ReadLimits(max_cells=10_000, max_ratio=100_000)
    assert "共享字符串超过上限" in read_table(data, "m.xlsx", COLUMNS, limits).problems[0].reason


def test_a_style_sheet_bomb_is_refused() -> None:
    xfs = '<xf numFmtId="14"/>' * 70_000
    styles = f'<styleSheet xmlns="{hostile.MAIN_NS}"><cellXfs>{xfs}</cellXfs></styleSheet>'
    data = _with_parts({"xl/styles.xml": styles})
    limits = ReadLimits(max_ratio=100_000)
    assert "单元格格式过多" in read_table(data, "m.xlsx", COLUMNS, limits).problems[0].reason


# --- CSV ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (hostile.csv_long_line, "第 3 行过长"),
        (hostile.csv_million_columns, "第 3 行过长"),
        (hostile.csv_empty_lines, "行数过多：第 200002 行"),
    ],
    ids=["15MB-line", "million-columns", "millions-of-empty-lines"],
)
def test_hostile_csv_is_refused_quickly(
    session: Session, build: Callable[[], bytes], reason: str
) -> None:
    assert reason in _file_problem(_refuse(session, build(), "hostile.csv"))


def test_a_file_over_the_upload_limit_is_refused_unread(session: Session) -> None:
    data = hostile.CSV_HEADER.encode() + hostile.GOOD_CSV_ROW * (21 * MB // 32)
    assert "文件过大" in _file_problem(_refuse(session, data, "big.csv"))


def test_csv_columns_right_of_the_limit_only_count_with_content() -> None:
    limits = ReadLimits(max_columns=3)
    trailing = read_table(b"date,outlet_code\n2026-11-08,O1,,,,,,\n", "m.csv", COLUMNS, limits)
    assert not trailing.problems and trailing.rows[0].cells["outlet_code"] == "O1"
    wide = read_table(b"date,outlet_code\n2026-11-08,O1,,,x\n", "m.csv", COLUMNS, limits)
    assert "列数过多" in wide.problems[0].reason


# --- every import reads through the same reader -------------------------------------------


@pytest.mark.parametrize(
    ("run", "columns"),
    [
        (import_org, org_import.COLUMNS),
        (import_merchants, merchants.IMPORT_COLUMNS),
        (import_events, funnel.IMPORT_COLUMNS),
    ],
    ids=["org", "merchants", "events"],
)
def test_every_import_refuses_the_dimension_bomb(session: Session, run, columns) -> None:
    _, users = make_tree(session), make_users(session)
    orgs = session.execute(sa.select(sa.func.count()).select_from(OrgUnit)).scalar_one()
    data = hostile.dimension_bomb(tuple(c.zh for c in columns))
    with hostile.memory_cap():
        report = run(session, actor=users[Role.ADMIN], data=data, filename="hostile.xlsx")
    assert "行数过多" in _file_problem(report)
    assert session.execute(sa.select(sa.func.count()).select_from(OrgUnit)).scalar_one() == orgs
    assert session.execute(sa.select(sa.func.count()).select_from(Merchant)).scalar_one() == 0


def test_a_report_keeps_the_first_problems_and_counts_them_all(session: Session) -> None:
    _, users = make_tree(session), make_users(session)
    data = hostile.CSV_HEADER.encode() + b"x,x,x,x,x,x,x,x\n" * 5_000
    report = import_metrics(session, actor=users[Role.ADMIN], data=data, filename="bad.csv")
    assert len(report.problems) == 40_000 and report.bad_lines == 5_000
    assert len(list(report.problems)) == 1_000
    assert "发现 40000 处问题（涉及 5000 行），下面列出前 1000 处" in report.summary()


# --- the command line, measured from outside ----------------------------------------------


def _cli(path: Path) -> tuple[int, str, float, float]:
    """Run `python -m core import-metrics FILE` capped at 3 GB and 120 s of CPU (a regression
    must not take the machine down); returns exit code, stderr, seconds and peak RSS in MB."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 1024 * MB, 3 * 1024 * MB))
        resource.setrlimit(resource.RLIMIT_CPU, (120, 120))

    err = path.with_suffix(".stderr")
    started = time.monotonic()
    with err.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "core", "import-metrics", str(path)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=cap,
        )
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    return os.waitstatus_to_exitcode(status), err.read_text(), seconds, usage.ru_maxrss / 1024


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: hostile.dimension_bomb(), "行数过多"),
        (lambda: hostile.zip_bomb(400), "解压后过大"),
        (hostile.csv_empty_lines, "行数过多"),
    ],
    ids=["dimension-bomb", "zip-bomb", "empty-lines"],
)
def test_cli_refuses_hostile_files_in_bounded_memory(
    sqlite_url: str, tmp_path: Path, build: Callable[[], bytes], reason: str
) -> None:
    code, stderr, seconds, rss_mb = _cli(hostile.write(tmp_path / "hostile.dat", build()))
    assert code == 1 and reason in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert rss_mb < 500, f"peak RSS {rss_mb:.0f} MB"
    assert seconds < 30, f"{seconds:.1f} s"  # a safety bound, not a speed goal
    with Session(get_engine(sqlite_url)) as session:
        assert _metric_rows(session) == 0


def test_cli_refuses_a_huge_file_before_reading_it(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as file:
        file.truncate(1024 * MB)  # sparse: takes no disk space
    code, stderr, _, rss_mb = _cli(path)
    assert code == 1 and "文件过大（1024.0 MB，上限 20 MB）" in stderr, stderr[-2000:]
    assert rss_mb < 500
