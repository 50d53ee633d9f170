"""Fast bulk writes for the seed, the imports and the benchmark: COPY on PostgreSQL,
executemany on SQLite. Both run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime

from sqlmodel import Session, SQLModel


def bulk_insert(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> int:
    """Insert plain tuples into `table`; returns the number of rows written."""
    connection = session.connection()
    raw = connection.connection.driver_connection
    count = 0
    if connection.dialect.name == "postgresql":
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    rows = _sqlite_rows(rows)
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
    cursor = raw.cursor()
    batch: list[Sequence[object]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 20_000:
            cursor.executemany(sql, batch)
            count += len(batch)
            batch.clear()
    if batch:
        cursor.executemany(sql, batch)
        count += len(batch)
    cursor.close()
    return count


def _sqlite_value(value: object) -> object:
    # The storage formats SQLAlchemy's SQLite Date/DateTime types read back.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _sqlite_rows(rows: Iterable[Sequence[object]]) -> Iterable[tuple[object, ...]]:
    """Convert date/datetime cells; bulk rows repeat a few dates, so each is converted once."""
    memo: dict[object, object] = {}
    temporal: list[int] | None = None
    for row in rows:
        if temporal is None:
            temporal = [i for i, v in enumerate(row) if isinstance(v, date)]
        if not temporal:
            yield tuple(row)
            continue
        values = list(row)
        for i in temporal:
            v = values[i]
            if v is not None:
                converted = memo.get(v)
                if converted is None:
                    converted = memo[v] = _sqlite_value(v)
                values[i] = converted
        yield tuple(values)


@contextmanager
def indexes_dropped(session: Session, table: str) -> Iterator[None]:
    """Drop a table's secondary indexes for a bulk load and build them again afterwards:
    building an index once from sorted data is far cheaper than keeping it up row by row."""
    indexes = list(SQLModel.metadata.tables[table].indexes)
    connection = session.connection()
    for index in indexes:
        index.drop(connection)
    yield
    for index in indexes:
        index.create(connection)


def bulk_upsert(
    session: Session,
    table: str,
    columns: Sequence[str],
    keys: Sequence[str],
    rows: Iterable[Sequence[object]],
) -> None:
    """Insert rows, replacing the non-key columns of rows whose key already exists."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # COPY into a scratch table, then one set-based upsert: far faster than row inserts.
        staging = f"staging_{table}"
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table}) ON COMMIT DELETE ROWS"
        )
        connection.exec_driver_sql(f"TRUNCATE {staging}")
        bulk_insert(session, staging, columns, rows)
        names = ", ".join(columns)
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {conflict}"
        )
        return
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) {conflict}"
    cursor = connection.connection.driver_connection.cursor()
    cursor.executemany(sql, _sqlite_rows(rows))
    cursor.close()
