"""Persistence: SQLModel tables, the engine/session factory, Alembic migrations and the demo seed."""
