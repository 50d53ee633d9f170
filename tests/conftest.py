"""Test fixtures: a fresh database per test, on SQLite always and on PostgreSQL too when
TEST_DATABASE_URL is set (CI sets it). Factories keep the tests short."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from core.platform.settings import get_settings
from db.engine import get_engine
from db.migrate import empty_postgres_schema, upgrade_to_head

PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (much faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    get_engine(url).dispose()
    return path


@pytest.fixture(scope="session")
def postgres_ready() -> str:
    """Migrate the PostgreSQL test database once per run, from an empty schema."""
    empty_postgres_schema(PG_URL)
    upgrade_to_head(PG_URL)
    return PG_URL


def _truncate_all(url: str) -> None:
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with get_engine(url).begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def _fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_ready")
    _truncate_all(url)
    return url


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh, migrated database; DATABASE_URL points at it for the code under test."""
    url = _fresh_url(request.param, request, tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DEMO_MODE", "0")
    get_settings.cache_clear()
    yield url
    if url.startswith("sqlite"):
        get_engine(url).dispose()
    get_settings.cache_clear()


@pytest.fixture
def sqlite_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Like db_url, SQLite only: for page tests, where the database engine is not the point."""
    url = _fresh_url("sqlite", request, tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DEMO_MODE", "0")
    get_settings.cache_clear()
    yield url
    get_engine(url).dispose()
    get_settings.cache_clear()


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    with Session(get_engine(db_url), expire_on_commit=False) as s:
        yield s
