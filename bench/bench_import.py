"""Metrics import: a 100,000-row CSV through `import_metrics` (parse, validate every cell,
upsert, rebuild running totals, audit) against a bare csv.reader + executemany INSERT of
the same rows without any validation or running totals. Then the same rows as XLSX through
the bounded reader against openpyxl's read-only mode (what the reader used before), and
the slowest refusal of a hostile file (dimension bomb, zip bomb, 15 MB CSV line, 15
million empty lines)."""

from __future__ import annotations

import csv
import io
import random
import time
import tracemalloc
from datetime import date, timedelta

from sqlmodel import Session

from bench.common import Result, scratch_sqlite, timed
from core.metrics_import import IMPORT_COLUMNS, import_metrics
from core.permissions import Actor
from core.tabular import read_table
from db.engine import get_engine
from db.seed import seed_demo

END = date(2026, 11, 24)


def _csv(codes: list[str], days: int) -> bytes:
    rng = random.Random(5)
    out = io.StringIO()
    out.write("日期,网点编码,新增好友,好友总数,客户群数,群成员数,转化客户,新增存款(元)\n")
    for offset in range(days):
        day = (END - timedelta(days=offset)).isoformat()
        for code in codes:
            deposits = rng.randint(-500_000, 2_000_000) / 100
            out.write(
                f"{day},{code},{rng.randint(0, 30)},{rng.randint(100, 5000)},{rng.randint(1, 9)},"
                f'{rng.randint(50, 3000)},{rng.randint(0, 4)},"{deposits:,.2f}"\n'
            )
    return out.getvalue().encode("utf-8")


def run(scale: str) -> list[Result]:
    rows_wanted = 100_000 if scale == "full" else 30_000
    url = scratch_sqlite("import")
    engine = get_engine(url)
    with Session(engine) as session:
        seed_demo(session, end_date=END - timedelta(days=80), days=1)
        from sqlmodel import select

        from db.models import OrgLevel, OrgUnit

        codes = list(
            session.exec(
                select(OrgUnit.code).where(OrgUnit.level == OrgLevel.OUTLET).order_by(OrgUnit.code)
            )
        )
    days = -(-rows_wanted // len(codes))  # at least the wanted number of rows
    data = _csv(codes, days)
    rows = len(codes) * days

    def ours() -> object:
        with Session(engine) as session:
            report = import_metrics(
                session, actor=Actor.system("bench"), data=data, filename="bench.csv"
            )
            assert report.ok, report.problems[:3]
            return report

    ours_time, _ = timed(ours)

    def bare() -> None:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS bare (date TEXT, code TEXT, a INT, b INT, c INT, d INT, e INT, f TEXT, PRIMARY KEY (date, code))"
            )
            cursor.execute("DELETE FROM bare")
            reader = csv.reader(io.StringIO(data.decode("utf-8")))
            next(reader)
            cursor.executemany("INSERT OR REPLACE INTO bare VALUES (?,?,?,?,?,?,?,?)", reader)
            raw.commit()
        finally:
            raw.close()

    bare_time, _ = timed(bare)
    return [
        *_xlsx_reading(data, rows, scale),
        _hostile_refusals(scale),
        Result(
            name=f"import_metrics_{rows // 1000}k_rows",
            value=round(ours_time, 3),
            unit="s",
            baseline="csv.reader + executemany INSERT, no validation, no running totals (same SQLite file)",
            baseline_value=round(bare_time, 3),
            scale=scale,
            notes=f"{rows} rows ({len(codes)} outlets x {days} days), goal < 10 s for 100k rows",
        ),
    ]


def _xlsx(data: bytes) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in csv.reader(io.StringIO(data.decode("utf-8"))):
        sheet.append([int(v) if v.isdigit() else v for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _xlsx_reading(data: bytes, rows: int, scale: str) -> list[Result]:
    from openpyxl import load_workbook

    xlsx = _xlsx(data)

    def ours() -> int:
        table = read_table(xlsx, "bench.xlsx", IMPORT_COLUMNS)
        assert not table.problems, table.problems[:3]
        return len(table.rows)

    def openpyxl_read_only() -> int:
        book = load_workbook(io.BytesIO(xlsx), read_only=True, data_only=True)
        try:
            return sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
        finally:
            book.close()

    ours_time, _ = timed(ours)
    baseline_time, _ = timed(openpyxl_read_only)
    return [
        Result(
            name=f"import_xlsx_read_{rows // 1000}k_rows",
            value=round(ours_time, 3),
            unit="s",
            baseline="openpyxl read-only iter_rows (values only), no header mapping or checks",
            baseline_value=round(baseline_time, 3),
            scale=scale,
            notes=f"{len(xlsx) / 2**20:.1f} MB XLSX, {rows} rows x 8 columns, streaming expat reader",
        )
    ]


def _hostile_refusals(scale: str) -> Result:
    from tests import hostile  # the builders the regression tests use

    files = {
        "dimension bomb": hostile.dimension_bomb(),
        "zip bomb": hostile.zip_bomb(400),
        "15 MB CSV line": hostile.csv_long_line(),
        "15M empty lines": hostile.csv_empty_lines(),
    }
    seconds, peaks = {}, {}
    for name, data in files.items():
        start = time.perf_counter()
        table = read_table(data, name, IMPORT_COLUMNS)
        seconds[name] = time.perf_counter() - start
        assert [p.line for p in table.problems] == [0], (name, table.problems[:3])
        tracemalloc.start()  # a second run: tracing slows allocation-heavy code down
        read_table(data, name, IMPORT_COLUMNS)
        peaks[name] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    slowest = max(seconds, key=seconds.__getitem__)
    return Result(
        name="import_hostile_refusal_slowest",
        value=round(seconds[slowest], 3),
        unit="s",
        baseline="",
        baseline_value=None,
        scale=scale,
        notes=f"slowest of 4: {slowest}; Python peak (tracemalloc) per file: "
        + ", ".join(f"{n} {peaks[n]:.0f} MB" for n in files),
    )
