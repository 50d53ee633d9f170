"""The live WeCom loop as the app uses it: start and stop the outbox worker, drain the
outbox, and what the admin and hand-over pages show (mode, last token fetch, last
callback, failed calls, hand-over results)."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from core.channels.wecom import actions  # noqa: F401  (registers the outbox handlers)
from core.channels.wecom import client as client_module
from core.channels.wecom.callbacks import last_refusal
from core.channels.wecom.outbox import (
    OutboxWorker,
    drain,
    drain_once,
    record_status,
    start_worker,
    stop_worker,
)
from core.channels.wecom.outbox import wake as wake_threads
from core.channels.wecom.sidecar import WorkerProcess
from core.channels.wecom_queue import CONTACT_WAY, TRANSFER, enqueue_rows, outbox_row
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.errors import FieldProblem, ValidationFailed
from core.platform.permissions import Action, Actor, allowed, ensure_allowed
from core.platform.settings import WorkerMode, get_settings
from db.engine import write_transaction
from db.models import (
    ChannelCode,
    OrgUnit,
    OutboxState,
    Staff,
    WeComCallback,
    WeComOutbox,
    WeComStatus,
)

__all__ = [
    "drain",
    "drain_once",
    "handover_feedback",
    "overview",
    "run_worker",
    "start",
    "stop",
    "sync_contact_ways",
    "wake",
    "worker_state",
]
TOKEN = "token"


def _on_token(ok: bool, detail: str) -> None:
    record_status(TOKEN, ok, detail)


_sidecar: WorkerProcess | None = None


def _listen_for_tokens() -> None:
    if _on_token not in client_module.token_listeners:
        client_module.token_listeners.append(_on_token)


def start() -> bool:
    """Once per server process (the st.App lifespan): in live mode, the outbox worker as
    WECOM_WORKER says: a child process (the default), threads in the server, or none (an
    operator runs `python -m core wecom-worker` on their own)."""
    global _sidecar
    settings = get_settings()
    if not settings.wecom_enabled:
        return False
    if settings.wecom_worker is WorkerMode.PROCESS:
        if _sidecar is None:
            _sidecar = WorkerProcess()
            _sidecar.start()
    elif settings.wecom_worker is WorkerMode.THREAD:
        _listen_for_tokens()
        start_worker()
    return True


def stop() -> None:
    global _sidecar
    if _sidecar is not None:
        _sidecar.stop()
        _sidecar = None
    stop_worker()


def wake() -> None:
    """New calls were queued: whichever worker this process runs starts now."""
    if _sidecar is not None:
        _sidecar.wake()
    else:
        wake_threads()


def run_worker(*, wake_from_stdin: bool, stopping: threading.Event | None = None) -> int:
    """`python -m core wecom-worker`: the outbox worker in the foreground until `stopping`
    is set, or (with `wake_from_stdin`, as the server's child) until stdin closes; each byte
    read wakes it. 1 when WeCom is not configured."""
    if not get_settings().wecom_enabled:
        return 1
    stopping = stopping or threading.Event()
    _listen_for_tokens()
    worker = start_worker()
    if wake_from_stdin:
        threading.Thread(
            target=_read_wakes, args=(worker, stopping), name="wecom-wakes", daemon=True
        ).start()
    try:
        while not stopping.wait(1.0):  # a timeout, so Ctrl+C is seen at once
            continue
    finally:
        stop_worker()
    return 0


def _read_wakes(worker: OutboxWorker, stopping: threading.Event) -> None:
    stdin = sys.stdin.buffer
    while True:
        try:
            chunk = stdin.read1(4096)
        except (OSError, ValueError):
            chunk = b""
        if not chunk:  # the server closed our stdin, or is gone
            stopping.set()
            return
        worker.wake()


def worker_state() -> str:
    """Where this process's outbox worker runs, for the admin page."""
    mode = get_settings().wecom_worker
    if mode is WorkerMode.PROCESS and _sidecar is not None:
        if _sidecar.alive():
            note = f"独立进程运行中（pid {_sidecar.pid}）"
        else:
            note = f"独立进程未运行（上次退出码 {_sidecar.last_exit}），正在重启"
        return note + (f"，已重启 {_sidecar.restarts} 次" if _sidecar.restarts else "")
    if mode is WorkerMode.THREAD:
        return "服务进程内的线程"
    if mode is WorkerMode.NONE:
        return "本服务不启动（须另行运行 python -m core wecom-worker；定时任务每 30 秒补发）"
    return "未启动"


@dataclass(frozen=True)
class CallFailure:
    kind: str
    error: str
    at: datetime
    attempts: int


@dataclass(frozen=True)
class WeComOverview:
    live: bool
    corp_id: str
    api_base: str
    token_ok: bool | None  # None: no token fetched yet
    token_detail: str
    token_at: datetime | None
    last_callback_at: datetime | None
    last_callback: str
    refused: int  # refused callbacks since this process started
    last_refusal: str
    outbox: dict[OutboxState, int]
    failures: list[CallFailure]  # failed calls and welcomes not sent in time (expired)
    worker: str  # where the calls to WeCom are made from (worker_state)
    codes_without_contact_way: int  # enabled codes with none and none queued (sync_contact_ways)


def overview(session: Session, *, actor: Actor) -> WeComOverview:
    """The admin page's 企业微信 section."""
    ensure_allowed(actor, Action.MANAGE_JOBS)
    settings = get_settings()
    token = session.get(WeComStatus, TOKEN)
    last = session.exec(
        select(WeComCallback).order_by(col(WeComCallback.received_at).desc()).limit(1)
    ).first()
    counts = dict(
        session.execute(
            sa.select(WeComOutbox.state, sa.func.count()).group_by(WeComOutbox.state)
        ).all()
    )
    failures = [
        CallFailure(row.kind, row.error, row.finished_at or row.created_at, row.attempts)
        for row in session.exec(
            select(WeComOutbox)
            .where(WeComOutbox.state.in_([OutboxState.FAILED, OutboxState.EXPIRED]))
            .order_by(col(WeComOutbox.id).desc())
            .limit(20)
        )
    ]
    refusal, refused = last_refusal()
    return WeComOverview(
        live=settings.wecom_enabled,
        corp_id=settings.wecom_corp_id,
        api_base=settings.wecom_api_base,
        token_ok=token.ok if token else None,
        token_detail=token.detail if token else "",
        token_at=token.at if token else None,
        last_callback_at=last.received_at if last else None,
        last_callback=f"{last.event}：{last.outcome}" if last else "",
        refused=refused,
        last_refusal=f"{refusal.reason}（{refusal.at:%H:%M:%S} UTC）" if refusal else "",
        outbox={OutboxState(k): v for k, v in counts.items()},
        failures=failures,
        worker=worker_state(),
        codes_without_contact_way=len(_codes_without_contact_way(session))
        if settings.wecom_enabled
        else 0,
    )


def _codes_without_contact_way(session: Session) -> list[int]:
    """Enabled codes that have no contact way and no queued call to make one: typically
    codes made before live mode was switched on."""
    queued = (
        select(WeComOutbox.code_id)
        .where(
            WeComOutbox.kind == CONTACT_WAY,
            WeComOutbox.state.in_([OutboxState.PENDING, OutboxState.RUNNING]),
            WeComOutbox.code_id.is_not(None),
        )
        .scalar_subquery()
    )
    return list(
        session.exec(
            select(ChannelCode.id)
            .where(
                ChannelCode.enabled,
                ChannelCode.wecom_config_id.is_(None),
                ChannelCode.id.not_in(queued),
            )
            .order_by(ChannelCode.id)
        )
    )


def sync_contact_ways(session: Session, *, actor: Actor) -> int:
    """为现有活码创建联系我: queue a contact-way call for every enabled code that has none
    yet (once each; the worker makes them); how many were queued."""
    ensure_allowed(actor, Action.MANAGE_JOBS)
    if not get_settings().wecom_enabled:
        raise ValidationFailed(
            [FieldProblem("wecom", "未配置企业微信，活码无需创建联系我")],
            summary="无法创建联系我",
        )
    with write_transaction(session):
        code_ids = _codes_without_contact_way(session)
        enqueue_rows(session, [outbox_row(CONTACT_WAY, {}, code_id=i) for i in code_ids])
        audit.record(
            session,
            actor=actor,
            action=AuditAction.CODE_WECOM_SYNC,
            target_type="channel_code",
            summary=f"为 {len(code_ids)} 个尚无联系我的活码排队创建企业微信联系我",
            after={"code_ids": code_ids[:1000], "count": len(code_ids)},
        )
    if code_ids:
        wake()
    return len(code_ids)


@dataclass(frozen=True)
class HandoverNote:
    at: datetime
    what: str  # 继承请求 / 继承失败
    staff: str
    detail: str


def handover_feedback(session: Session, *, actor: Actor, limit: int = 20) -> list[HandoverNote]:
    """WeCom's side of 离职继承, for the hand-over page: each queued transfer's result and
    each `transfer_fail` callback, for staff in the actor's scope."""
    ensure_allowed(actor, Action.MANAGE_CHANNEL_CODES)
    notes: list[tuple[str, HandoverNote]] = []
    for row in session.exec(
        select(WeComOutbox)
        .where(WeComOutbox.kind == TRANSFER)
        .order_by(col(WeComOutbox.id).desc())
        .limit(limit)
    ):
        state = OutboxState(row.state)
        detail = row.result or row.error or state.label
        if state is not OutboxState.DONE:
            detail = f"{state.label}：{row.error}" if row.error else state.label
        notes.append(
            (
                row.payload.get("handover_userid", ""),
                HandoverNote(row.created_at, "继承请求", "", detail),
            )
        )
    for cb in session.exec(
        select(WeComCallback)
        .where(WeComCallback.event == "change_external_contact/transfer_fail")
        .order_by(col(WeComCallback.id).desc())
        .limit(limit)
    ):
        notes.append((cb.staff_userid, HandoverNote(cb.received_at, "继承失败", "", cb.outcome)))
    return _in_scope(session, actor, notes)


def _in_scope(
    session: Session, actor: Actor, notes: list[tuple[str, HandoverNote]]
) -> list[HandoverNote]:
    userids = {u for u, _ in notes if u}
    staff = {
        s.wecom_userid: (s, outlet)
        for s, outlet in session.exec(
            select(Staff, OrgUnit)
            .join(OrgUnit, OrgUnit.id == Staff.outlet_id)
            .where(Staff.wecom_userid.in_(userids))
        )
    }
    kept = []
    for userid, note in notes:
        found = staff.get(userid)
        if found and allowed(actor, Action.MANAGE_CHANNEL_CODES, found[1]):
            kept.append(
                HandoverNote(note.at, note.what, f"{found[0].name}（{found[1].name}）", note.detail)
            )
    return sorted(kept, key=lambda n: n.at, reverse=True)
