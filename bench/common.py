"""Shared pieces of the benchmarks: result records, timing, scratch databases."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from db.migrate import upgrade_to_head

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float | None
    scale: str
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        """Baseline time / our time: above 1 means we are faster."""
        if not self.baseline_value or not self.value:
            return None
        return round(self.baseline_value / self.value, 2)

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Median wall time in seconds over `repeat` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def ensure_postgres_database(url: str) -> bool:
    """Create the database `url` names if it is missing; False when PostgreSQL is unreachable."""
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = url.rsplit("/", 1)[1]
            if not conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first():
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except sa.exc.OperationalError:
        print("  PostgreSQL unreachable: SQLite only")
        return False
    return True


def scratch_sqlite(name: str) -> str:
    directory = Path(os.environ.get("BENCH_TMP", tempfile.gettempdir())) / "rds-bench"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    return url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
