"""Getting a database ready: migrate it, and in demo mode fill an empty one with the demo
province. Called by the server's lifespan and by `python -m core init-db`."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import select

from core.settings import Settings, get_settings
from db.engine import session_scope
from db.migrate import upgrade_to_head
from db.models import OrgUnit


def ensure_database(
    settings: Settings | None = None, *, say: Callable[[str], None] = print
) -> None:
    settings = settings or get_settings()
    upgrade_to_head(settings.database_url)
    if not settings.demo_mode:
        return
    with session_scope(settings.database_url) as session:
        if session.exec(select(OrgUnit.id).limit(1)).first() is not None:
            return
        from db.seed import seed_demo  # numpy and friends only when a seed is needed

        say("首次启动：正在生成演示省份数据（约半分钟）…")
        seed_demo(session, progress=lambda msg: say(f"  {msg}"))
