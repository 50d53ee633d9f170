"""The engine and session factory. One engine per database URL per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session


def _prepare_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the app read while an import or the scheduler writes; foreign keys are off
    # by default in SQLite; the busy timeout makes concurrent writers wait, not fail.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin(conn: sa.Connection) -> None:
    # pysqlite's own transaction handling is off (isolation_level=None) so that we choose:
    # a write transaction takes the write lock upfront (IMMEDIATE), because a deferred one
    # that reads and then writes fails outright when another process wrote in between.
    # Reads stay deferred so pages are never blocked behind an import.
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def get_engine(url: str | None = None) -> sa.Engine:
    """The engine for `url` (default: the configured DATABASE_URL), one per URL per process."""
    if url is None:
        from core.platform.settings import get_settings  # settings live in core; import late

        url = get_settings().database_url
    return _engine_for(url)


@lru_cache(maxsize=8)
def _engine_for(url: str) -> sa.Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None}
        )
        sa.event.listen(engine, "connect", _prepare_sqlite)
        sa.event.listen(engine, "begin", _begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def new_session(url: str | None = None) -> Session:
    return Session(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that is closed afterwards; services commit their own transaction."""
    session = new_session(url)
    try:
        yield session
    finally:
        session.close()


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """One all-or-nothing write: commit at the end, roll back on any error.

    Core services wrap their whole change (data, history, audit) in one of these.
    """
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("write_transaction started with unsaved changes pending")
        # End the read-only transaction so the write one starts fresh. Commit, not rollback:
        # with expire_on_commit off it leaves the objects already loaded usable.
        session.commit()
    session.connection(execution_options={"sqlite_immediate": True})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def is_postgres(session_or_engine: Session | sa.Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"
