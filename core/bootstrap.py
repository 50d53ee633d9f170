"""Getting a database ready: migrate it, rebuild derived data that a migration left empty,
and in demo mode fill an empty database with the demo province. Called by the server's
lifespan and by `python -m core init-db`."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlmodel import select

from core.metrics import snapshots
from core.platform.directory import outlet_directory
from core.platform.settings import Settings, get_settings
from db.engine import session_scope, write_transaction
from db.migrate import upgrade_to_head
from db.models import DailyMetric, MetricSnapshot, OrgUnit

Say = Callable[[str], None]


def prepare_database(url: str, *, say: Say = print) -> None:
    """Schema at head, and metric snapshots present whenever daily rows are."""
    upgrade_to_head(url)
    with session_scope(url) as session:
        has_daily = session.execute(sa.select(DailyMetric.date).limit(1)).first() is not None
        has_snapshots = session.execute(sa.select(MetricSnapshot.date).limit(1)).first() is not None
        if has_daily and not has_snapshots:
            say("正在根据网点日报重建排名快照…")
            with write_transaction(session):
                written = snapshots.rebuild_all(session, outlet_directory(session).size)
            say(f"已重建 {written} 天的快照。")


def ensure_database(settings: Settings | None = None, *, say: Say = print) -> None:
    settings = settings or get_settings()
    prepare_database(settings.database_url, say=say)
    if not settings.demo_mode:
        return
    from core.demo.seed import seed_demo  # numpy and friends only in demo mode

    with session_scope(settings.database_url) as session:
        if session.exec(select(OrgUnit.id).limit(1)).first() is None:
            say("首次启动：正在生成演示省份数据（约半分钟）…")
        # Creates only what is missing, so a demo database made by an older version gains
        # what later versions added (campaigns, review stages …).
        seed_demo(session, progress=lambda msg: say(f"  {msg}"))
