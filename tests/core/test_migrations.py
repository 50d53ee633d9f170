"""The Alembic migrations build exactly the schema the models describe, on both databases,
and `init-db` brings an empty or an older database to head."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from db.engine import get_engine
from db.migrate import is_up_to_date, upgrade_to_head


def test_models_and_migrations_agree(db_url: str) -> None:
    with get_engine(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], diff
    assert is_up_to_date(db_url)


def test_upgrade_is_idempotent(db_url: str) -> None:
    upgrade_to_head(db_url)
    upgrade_to_head(db_url)
    assert is_up_to_date(db_url)


def test_empty_database_is_created(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert not is_up_to_date(url)
    upgrade_to_head(url)
    assert is_up_to_date(url)
