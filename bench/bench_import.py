"""Metrics import: a 100,000-row CSV through `import_metrics` (parse, validate every cell,
upsert, rebuild running totals, audit) against a bare csv.reader + executemany INSERT of
the same rows without any validation or running totals. Then the same rows as XLSX through
the bounded reader against openpyxl's read-only mode (what the reader used before), and
the slowest refusal of a hostile file (dimension bomb, zip bomb, 15 MB CSV line, 15
million empty lines). Then one row dated two years
before the data: the import (a snapshot for that day, the later ones patched) against the
refresh used before, which wrote a snapshot for every calendar day up to the newest."""

from __future__ import annotations

import csv
import io
import random
import time
import tracemalloc
from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from bench.common import Result, scratch_sqlite, timed
from core.demo.seed import seed_demo
from core.metrics import snapshots
from core.metrics.importing import IMPORT_COLUMNS, import_metrics
from core.platform.directory import outlet_directory
from core.platform.permissions import Actor
from core.platform.tabular import read_table
from db.engine import get_engine
from db.models import DailyMetric, MetricSnapshot, OrgUnit

END = date(2026, 11, 24)
OLD_DAY = END - timedelta(days=730)


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
        _old_day(engine, codes[0], scale),
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


def _old_day(engine: sa.Engine, code: str, scale: str) -> Result:
    """One row dated OLD_DAY into the imported data: ours, then the dense refresh (rolled back)."""
    with Session(engine) as session:
        outlet_id = session.execute(sa.select(OrgUnit.id).where(OrgUnit.code == code)).scalar_one()
        size = outlet_directory(session).size

        def dense() -> int:
            session.add(DailyMetric(date=OLD_DAY, outlet_id=outlet_id, new_friends=3))
            session.flush()
            return _dense_refresh(session, outlet_id, size)

        dense_time, dense_written = timed(dense)
        session.rollback()
    data = f"日期,网点编码,新增好友,好友总数,客户群数,群成员数,转化客户,新增存款(元)\n{OLD_DAY},{code},3,0,0,0,0,0\n"

    def ours() -> None:
        with Session(engine) as session:
            report = import_metrics(
                session, actor=Actor.system("bench"), data=data.encode(), filename="old.csv"
            )
            assert report.ok, report.problems[:3]

    ours_time, _ = timed(ours)
    with Session(engine) as session:
        stored = session.execute(sa.select(sa.func.count()).select_from(MetricSnapshot)).scalar()
    return Result(
        name="import_metrics_old_day",
        value=round(ours_time, 3),
        unit="s",
        baseline="previous refresh: a snapshot for every calendar day from the old day on",
        baseline_value=round(dense_time, 3),
        scale=scale,
        notes=f"one row dated {OLD_DAY} into data up to {END}: at most {stored} snapshots "
        f"written (all that exist), the previous refresh wrote {dense_written}",
    )


def _dense_refresh(session: Session, outlet_id: int, size: int) -> int:
    """The refresh as it was before sparse snapshots, for one changed outlet."""
    horizon = snapshots.latest_date(session)
    outlets = np.array([outlet_id], dtype=np.int64)
    previous = snapshots.state_at(session, OLD_DAY - timedelta(days=1), size)
    running = snapshots._Running(outlets, previous, size)
    table = MetricSnapshot.__table__
    existing = set(
        session.execute(sa.select(table.c.date).where(table.c.date >= OLD_DAY)).scalars()
    )
    day, written = OLD_DAY, 0
    while day <= horizon:
        running.apply(*snapshots._daily_rows(session, day, outlets))
        stored = snapshots.load(session, day) if day in existing else None
        current = stored.padded(size) if stored is not None else previous.copy(day)
        running.patch(current)
        snapshots._save(session, current, exists=day in existing)
        previous, day, written = current, day + timedelta(days=1), written + 1
    return written


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
