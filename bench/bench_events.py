"""Event import: storing a file of scan/friend/group/conversion events through
`events.add_events` (a few INSERT … ON CONFLICT DO NOTHING statements) against the loop the
import used before: look each event up, insert it if new, flush. Both store the same events,
first into an empty table, then again (all duplicates); SQLite and PostgreSQL. A full
`import_events` of the same events as a CSV file (parse, validate, hash, store) is timed too."""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlmodel import Session, select

from bench.common import Result, ensure_postgres_database, scratch_sqlite, timed
from core.channels.events import NewEvent, add_events, hash_customer
from core.channels.funnel import import_events
from core.demo.seed import seed_demo
from core.platform.clock import SHANGHAI
from core.platform.permissions import Actor
from db.engine import get_engine, write_transaction
from db.migrate import empty_postgres_schema, upgrade_to_head
from db.models import ChannelCode, ChannelEvent, EventType

PG_URL = os.environ.get(
    "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/rds_bench_events"
)
START = datetime(2026, 11, 1, 8, 0, tzinfo=SHANGHAI)
WORDS = {
    EventType.SCAN: "scan",
    EventType.ADD_FRIEND: "add_friend",
    EventType.JOIN_GROUP: "join_group",
    EventType.CONVERT: "convert",
}


def _fresh(backend: str) -> str:
    if backend == "sqlite":
        return scratch_sqlite("events")
    empty_postgres_schema(PG_URL)
    upgrade_to_head(PG_URL)
    return PG_URL


def _events(
    codes: list[ChannelCode], count: int
) -> list[tuple[ChannelCode, datetime, EventType, str]]:
    rng = random.Random(8)
    return [
        (
            rng.choice(codes),
            START + timedelta(seconds=rng.randint(0, 27 * 86_400)),
            rng.choice(list(WORDS)),
            f"wm{rng.randint(1, count)}",
        )
        for _ in range(count)
    ]


def _per_row(session: Session, events: list[NewEvent]) -> int:
    """The import's storage loop before add_events: one lookup (and one flush) per event."""
    new = 0
    for e in events:
        exists = session.exec(
            select(ChannelEvent.id).where(
                ChannelEvent.code_id == e.code.id,
                ChannelEvent.customer == e.customer,
                ChannelEvent.event_type == e.event_type,
                ChannelEvent.at == e.at,
            )
        ).first()
        if exists:
            continue
        session.add(
            ChannelEvent(
                code_id=e.code.id,
                at=e.at,
                event_type=e.event_type,
                customer=e.customer,
                staff_id=None,
                source="import",
            )
        )
        if e.event_type is EventType.ADD_FRIEND:
            e.code.adds_count += 1
            session.add(e.code)
        session.flush()
        new += 1
    return new


def _store(url: str, events: list[NewEvent], how) -> int:
    with Session(get_engine(url), expire_on_commit=False) as session:
        codes = {c.id: c for c in session.exec(select(ChannelCode))}
        mine = [NewEvent(codes[e.code.id], e.at, e.event_type, e.customer, None) for e in events]
        with write_transaction(session):
            return how(session, mine)


def _clear(url: str) -> None:
    with get_engine(url).begin() as conn:
        conn.execute(sa.text("DELETE FROM channel_event"))
        conn.execute(sa.text("UPDATE channel_code SET adds_count = 0"))


def _import_file(url: str, data: bytes) -> object:
    with Session(get_engine(url), expire_on_commit=False) as session:
        report = import_events(session, actor=Actor.system("bench"), data=data, filename="e.csv")
        assert report.ok, report.problems[:3]
        return report


def _measure(backend: str, count: int, scale: str) -> list[Result]:
    url = _fresh(backend)
    with Session(get_engine(url), expire_on_commit=False) as session:
        seed_demo(session, days=1, city_limit=1)
        codes = list(session.exec(select(ChannelCode)))
    raw = _events(codes, count)
    events = [NewEvent(c, at, kind, hash_customer(who), None) for c, at, kind, who in raw]
    ours = partial(_store, url, events, lambda s, e: add_events(s, e, "import"))
    figures = {}
    for name, store in (("ours", ours), ("per_row", partial(_store, url, events, _per_row))):
        _clear(url)
        figures[name, "new"], stored = timed(store)
        figures[name, "again"], again = timed(store)
        assert again == 0 and stored > 0.99 * count, (name, stored, again)
    _clear(url)
    data = "time,code,customer,event\n" + "".join(
        f"{at:%Y-%m-%d %H:%M:%S},{c.slug},{who},{WORDS[kind]}\n" for c, at, kind, who in raw
    )
    file_time, _ = timed(partial(_import_file, url, data.encode()))
    print(
        f"  {backend}: {count} events stored in {figures['ours', 'new']:.2f} s "
        f"(per row {figures['per_row', 'new']:.2f} s)",
        flush=True,
    )
    results = [
        Result(
            name=f"store_events_{count // 1000}k_{when}_{backend}",
            value=round(figures["ours", when], 3),
            unit="s",
            baseline="per-row duplicate lookup + ORM insert + flush (the import's former loop)",
            baseline_value=round(figures["per_row", when], 3),
            scale=scale,
            notes=f"{count} events over {len(codes)} codes, {what}",
        )
        for when, what in (("new", "into an empty table"), ("again", "again, all duplicates"))
    ]
    results.append(
        Result(
            name=f"import_events_{count // 1000}k_file_{backend}",
            value=round(file_time, 3),
            unit="s",
            baseline="",
            baseline_value=None,
            scale=scale,
            notes="the same events as a CSV through import_events: parse, validate, hash, store",
        )
    )
    return results


def run(scale: str) -> list[Result]:
    count = 50_000 if scale == "full" else 10_000
    backends = ["sqlite"] + (["postgresql"] if ensure_postgres_database(PG_URL) else [])
    return [r for backend in backends for r in _measure(backend, count, scale)]
