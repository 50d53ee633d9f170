"""Cell parsers and the table reader: every accepted spelling and every refusal."""

from datetime import date, datetime

import pytest
from openpyxl import Workbook

from core.platform.cells import CellError, DateWindow, parse_amount_fen, parse_count, parse_date
from core.platform.clock import SHANGHAI
from core.platform.tabular import Column, read_table

COLUMNS = (
    Column("date", "日期"),
    Column("outlet_code", "网点编码"),
    Column("note", "备注", required=False),
)


@pytest.mark.parametrize(
    "raw",
    [
        "2026-11-08",
        "2026/11/08",
        "2026/11/8",
        "2026年11月8日",
        "2026年11月08日",
        "20261108",
        "2026-11-08 00:00:00",
        "２０２６-１１-０８",
        46334,
        "46334",
        datetime(2026, 11, 8, 0, 0),
        date(2026, 11, 8),
    ],
)
def test_dates_in_every_listed_form(raw: object) -> None:
    assert parse_date(raw) == date(2026, 11, 8)


@pytest.mark.parametrize(
    "raw", ["2026-02-30", "11/08/2026", "昨天", "", None, "2026-13-01", 46334.5]
)
def test_bad_dates_are_refused_with_a_reason(raw: object) -> None:
    with pytest.raises(CellError) as info:
        parse_date(raw)
    assert "日期" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "fen"),
    [
        ("1,234.50", 123450),
        ("1234.5", 123450),
        ("-1,234.56", -123456),
        ("１，２３４．５０", 123450),
        ("０", 0),
        ("¥88", 8800),
        ("(12.30)", -1230),
        (12.3, 1230),
        (-7, -700),
        ("0.01", 1),
        ("1,000,000", 100000000),
    ],
)
def test_amounts_become_exact_fen(raw: object, fen: int) -> None:
    assert parse_amount_fen(raw) == fen


@pytest.mark.parametrize("raw", ["1.234", "12,34.5", "abc", "", "1e5", "--5", True, "1,2345"])
def test_bad_amounts_are_refused(raw: object) -> None:
    with pytest.raises(CellError):
        parse_amount_fen(raw)


@pytest.mark.parametrize(
    ("raw", "value"), [("1,234", 1234), ("１２", 12), (7, 7), (7.0, 7), ("0", 0)]
)
def test_counts(raw: object, value: int) -> None:
    assert parse_count(raw) == value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("-3", "负数"), ("2.5", "整数"), ("", "不能为空"), ("x", "数字"), ("999999999999", "过大")],
)
def test_bad_counts(raw: object, reason: str) -> None:
    with pytest.raises(CellError, match=reason):
        parse_count(raw)


def test_csv_in_utf8_bom_gbk_and_gb18030_with_chinese_headers() -> None:
    text = "日期,网点编码,备注\n2026-11-08,O1,长沙支局\n"
    for data in (
        text.encode("utf-8"),
        text.encode("utf-8-sig"),
        text.encode("gbk"),
        text.encode("gb18030"),
    ):
        table = read_table(data, "m.csv", COLUMNS)
        assert not table.problems
        assert table.rows[0].cells == {
            "date": "2026-11-08",
            "outlet_code": "O1",
            "note": "长沙支局",
        }
        assert table.rows[0].line == 2


def test_english_headers_spacing_and_full_width_are_matched() -> None:
    table = read_table(b" Date ,OUTLET_CODE\n2026-11-08,O1\n", "m.csv", COLUMNS)
    assert not table.problems and table.rows[0].cells["outlet_code"] == "O1"


def test_missing_and_duplicate_columns_are_file_problems() -> None:
    missing = read_table("日期,备注\n2026-11-08,x\n".encode(), "m.csv", COLUMNS)
    assert "缺少必需的列" in missing.problems[0].reason and "网点编码" in missing.problems[0].reason
    duplicate = read_table(b"date,outlet_code,date\n1,2,3\n", "m.csv", COLUMNS)
    assert any("重复" in p.reason for p in duplicate.problems)


def test_empty_header_only_and_blank_lines() -> None:
    assert read_table(b"", "m.csv", COLUMNS).problems[0].reason == "文件为空"
    assert "没有数据行" in read_table(b"date,outlet_code\n", "m.csv", COLUMNS).problems[0].reason
    table = read_table(b"date,outlet_code\n\n2026-11-08,O1\n,\n", "m.csv", COLUMNS)
    assert [r.line for r in table.rows] == [3]


def test_binary_and_old_excel_files_are_refused_clearly() -> None:
    assert (
        "xls"
        in read_table(b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "m.xls", COLUMNS).problems[0].reason
    )
    assert (
        "编码"
        in read_table(b"date,outlet_code\n\xff\xfe\xfa,1\n" * 3, "m.csv", COLUMNS)
        .problems[0]
        .reason
    )
    assert (
        "UTF-16"
        in read_table("日期,网点编码\n".encode("utf-16"), "m.csv", COLUMNS).problems[0].reason
    )
    assert "Excel" in read_table(b"PK\x03\x04garbage", "m.xlsx", COLUMNS).problems[0].reason


def test_huge_cells_are_refused_not_stored() -> None:
    table = read_table(f"date,outlet_code\n2026-11-08,{'X' * 5000}\n".encode(), "m.csv", COLUMNS)
    assert table.problems[0].line == 2 and "过长" in table.problems[0].reason
    giant = read_table(
        f'date,outlet_code\n2026-11-08,"{"Y" * 200_000}"\n'.encode(), "m.csv", COLUMNS
    )
    assert giant.problems and "无法解析" in giant.problems[0].reason


def test_xlsx_with_date_cells_and_numbers(tmp_path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["日期", "网点编码"])
    sheet.append([datetime(2026, 11, 8), 430101001])
    path = tmp_path / "m.xlsx"
    book.save(path)
    table = read_table(path.read_bytes(), "m.xlsx", COLUMNS)
    assert not table.problems
    assert parse_date(table.rows[0].cells["date"]) == date(2026, 11, 8)
    assert table.rows[0].line == 2


def test_multiline_quoted_cell_keeps_line_numbers_of_row_starts() -> None:
    table = read_table(
        b'date,outlet_code,note\n2026-11-08,O1,"a\nb"\n2026-11-09,O2,c\n', "m.csv", COLUMNS
    )
    assert [r.line for r in table.rows] == [2, 4]


WINDOW = DateWindow(date(2015, 1, 1), datetime(2026, 11, 8, 9, 30, tzinfo=SHANGHAI))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1900-01-01", "日期早于允许的最早日期 2015-01-01"),
        ("0001-01-01", "日期早于允许的最早日期 2015-01-01"),
        ("2014-12-31", "日期早于允许的最早日期 2015-01-01"),
        ("2026-11-09", "日期不能晚于今天（上海时间 2026-11-08）"),
        ("9999-12-31", "日期不能晚于今天（上海时间 2026-11-08）"),
        (datetime(1900, 1, 1), "日期早于允许的最早日期 2015-01-01"),
        ("10000", "10000 按 Excel 日期序号读作 1927-05-18，日期早于允许的最早日期 2015-01-01"),
        (42004, "42004 按 Excel 日期序号读作 2014-12-31，日期早于允许的最早日期 2015-01-01"),
        (46335, "46335 按 Excel 日期序号读作 2026-11-09，日期不能晚于今天（上海时间 2026-11-08）"),
    ],
)
def test_dates_outside_the_window_are_refused_saying_what_was_read(
    raw: object, reason: str
) -> None:
    with pytest.raises(CellError) as info:
        parse_date(raw, WINDOW)
    assert str(info.value) == reason


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        ("2015-01-01", date(2015, 1, 1)),
        (42005, date(2015, 1, 1)),
        ("2026-11-08", date(2026, 11, 8)),
    ],
)
def test_the_window_includes_its_ends(raw: object, day: date) -> None:
    assert parse_date(raw, WINDOW) == day


def test_timestamps_are_compared_not_converted() -> None:
    assert WINDOW.moment_problem(datetime(2026, 11, 8, 9, 30, tzinfo=SHANGHAI)) is None
    assert WINDOW.moment_problem(datetime(2026, 11, 8, 9, 31, tzinfo=SHANGHAI)) == (
        "时间不能晚于现在（上海时间 2026-11-08 09:30）"
    )
    for extreme in (datetime.min, datetime.max):  # would overflow if shifted to UTC
        assert WINDOW.moment_problem(extreme.replace(tzinfo=SHANGHAI))
