"""WeCom's server callbacks (/wecom/callback): check and decrypt them, then turn each event
into channel events through the same `add_events` path as imports (idempotent by the
event's identity; the customer id stored hashed). Slow follow-ups (welcome message, tags)
are queued in the outbox, so the route answers well within WeCom's 5 seconds.

- A wrong signature, a wrong corp id or a timestamp more than 5 minutes off: refused
  (403) before anything is written.
- A replayed message (the same ciphertext again) is ignored; a re-delivered event with a
  new ciphertext is stored once anyway, by the event's identity.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from core.channels.events import add_event, hash_customer, welcome_text
from core.channels.wecom.crypto import (
    CallbackRefused,
    WeComCrypto,
    encrypted_field,
    parse_fields,
)
from core.channels.wecom_queue import GREET, enqueue, live
from core.platform.clock import utcnow
from core.platform.errors import ValidationFailed
from core.platform.settings import get_settings
from db.engine import is_postgres, session_scope, write_transaction
from db.models import ChannelCode, ChannelEvent, EventType, OrgUnit, Staff, WeComCallback

ADD_TYPES = {"add_external_contact"}
LOSS_TYPES = {"del_external_contact": "员工删除了客户", "del_follow_user": "客户删除了员工"}
TRANSFER_FAIL_REASONS = {
    "customer_refused": "客户拒绝了继承",
    "customer_limit_exceed": "接替员工的客户数已达上限",
}


@dataclass(frozen=True)
class Refusal:
    at: datetime
    reason: str


# Refusals write nothing to the database (that is the point): the last one is kept per
# process for the admin page.
_refusals: dict[str, Refusal | int] = {"count": 0}
_refusal_lock = threading.Lock()


def last_refusal() -> tuple[Refusal | None, int]:
    with _refusal_lock:
        last = _refusals.get("last")
        return (last if isinstance(last, Refusal) else None), int(_refusals["count"])


def _refuse(reason: str) -> None:
    with _refusal_lock:
        _refusals["last"] = Refusal(utcnow(), reason)
        _refusals["count"] = int(_refusals["count"]) + 1


def crypto() -> WeComCrypto:
    s = get_settings()
    return WeComCrypto(s.wecom_token, s.wecom_aes_key, s.wecom_corp_id)


def verify_url(params: dict[str, str], *, now: float | None = None) -> str:
    """WeCom's URL check (GET with echostr): the decrypted echo."""
    try:
        return crypto().check(
            msg_signature=params.get("msg_signature", ""),
            timestamp=params.get("timestamp", ""),
            nonce=params.get("nonce", ""),
            encrypted=params.get("echostr", ""),
            now=now,
        )
    except CallbackRefused as exc:
        _refuse(f"URL 验证：{exc}")
        raise


@dataclass(frozen=True)
class Received:
    event: str
    outcome: str
    queued: bool  # calls to WeCom were queued (the outbox worker should wake)


def receive(params: dict[str, str], body: bytes, *, now: float | None = None) -> Received:
    """A POSTed callback: CallbackRefused if it is not genuine and fresh; else handled."""
    try:
        encrypted = encrypted_field(body)
        message = crypto().check(
            msg_signature=params.get("msg_signature", ""),
            timestamp=params.get("timestamp", ""),
            nonce=params.get("nonce", ""),
            encrypted=encrypted,
            now=now,
        )
        fields = parse_fields(message)
    except CallbackRefused as exc:
        _refuse(str(exc))
        raise
    digest = hashlib.sha256(encrypted.encode()).hexdigest()
    with session_scope() as session:
        return handle_event(session, fields, digest)


def event_name(fields: dict[str, str]) -> str:
    name = fields.get("Event", "")
    return f"{name}/{fields['ChangeType']}" if fields.get("ChangeType") else name


def handle_event(session: Session, fields: dict[str, str], digest: str) -> Received:
    """Store the callback once (its digest) and apply its event, in one transaction."""
    name = event_name(fields)
    with write_transaction(session):
        callback_id = _claim(session, digest, name, fields.get("UserID", ""))
        if callback_id is None:
            return Received(name, "重复的回调，已忽略", False)
        try:
            outcome, queued = _apply(session, fields)
        except ValidationFailed as exc:  # e.g. a time outside the window: kept, not applied
            outcome, queued = f"未记录：{exc}", False
        session.execute(
            sa.update(WeComCallback)
            .where(WeComCallback.id == callback_id)
            .values(outcome=outcome[:300])
        )
        return Received(name, outcome, queued)


def _claim(session: Session, digest: str, event: str, userid: str) -> int | None:
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    statement = (
        insert(WeComCallback.__table__)
        .values(digest=digest, event=event[:64], staff_userid=userid[:64], received_at=utcnow())
        .on_conflict_do_nothing()
        .returning(WeComCallback.__table__.c.id)
    )
    return session.execute(statement).scalar()


def _moment(fields: dict[str, str]) -> datetime:
    try:
        return datetime.fromtimestamp(int(fields.get("CreateTime", "")), tz=UTC)
    except ValueError:
        return utcnow()


def _apply(session: Session, fields: dict[str, str]) -> tuple[str, bool]:
    event, change = fields.get("Event", ""), fields.get("ChangeType", "")
    if event == "change_external_contact" and change in ADD_TYPES:
        return _friend_added(session, fields)
    if event == "change_external_contact" and change in LOSS_TYPES:
        return _lost(session, fields, LOSS_TYPES[change]), False
    if event == "change_external_contact" and change == "transfer_fail":
        reason = fields.get("FailReason", "")
        return f"继承失败：{TRANSFER_FAIL_REASONS.get(reason, reason or '未说明原因')}", False
    if event == "change_external_chat" and fields.get("UpdateDetail") == "add_member":
        return _joined(session, fields), False
    return "未处理的事件类型", False


def _staff(session: Session, userid: str) -> Staff | None:
    if not userid:
        return None
    return session.exec(select(Staff).where(Staff.wecom_userid == userid)).first()


def _friend_added(session: Session, fields: dict[str, str]) -> tuple[str, bool]:
    slug = fields.get("State", "")
    code = (
        session.exec(select(ChannelCode).where(ChannelCode.slug == slug)).first() if slug else None
    )
    if code is None:
        return "不是本系统活码带来的好友（State 未知）", False
    staff = _staff(session, fields.get("UserID", ""))
    external = fields.get("ExternalUserID", "")
    recorded = add_event(
        session,
        code,
        _moment(fields),
        EventType.ADD_FRIEND,
        hash_customer(external),
        staff.id if staff else None,
        "callback",
    )
    if not recorded:
        return "该好友事件已记录过", False
    if not live():
        return f"已记录好友（活码「{code.name}」）", False
    outlet = session.get(OrgUnit, code.outlet_id)
    enqueue(
        session,
        GREET,
        {
            "userid": fields.get("UserID", ""),
            "external_userid": external,
            "welcome_code": fields.get("WelcomeCode", ""),
            # outlet and staff filled now; the customer's name when the call runs
            "welcome": welcome_text(
                code.welcome_message,
                nickname="{客户昵称}",
                outlet=outlet.name if outlet else "",
                staff=staff.name if staff else "",
            ),
            "tags": list(code.tags),
        },
        code_id=code.id,
    )
    return f"已记录好友（活码「{code.name}」），欢迎语与标签已排队", True


def _source_code(session: Session, customer: str, staff_id: int | None) -> ChannelCode | None:
    """The code that brought this customer in (their newest friend event)."""
    query = select(ChannelEvent.code_id).where(
        ChannelEvent.customer == customer, ChannelEvent.event_type == EventType.ADD_FRIEND
    )
    if staff_id is not None:
        query = query.where(ChannelEvent.staff_id == staff_id)
    code_id = session.exec(query.order_by(ChannelEvent.at.desc()).limit(1)).first()
    return session.get(ChannelCode, code_id) if code_id else None


def _lost(session: Session, fields: dict[str, str], why: str) -> str:
    staff = _staff(session, fields.get("UserID", ""))
    customer = hash_customer(fields.get("ExternalUserID", ""))
    code = _source_code(session, customer, staff.id if staff else None)
    if code is None:
        return f"{why}（不是活码带来的客户）"
    recorded = add_event(
        session,
        code,
        _moment(fields),
        EventType.LOSS,
        customer,
        staff.id if staff else None,
        "callback",
    )
    return f"{why}，计入活码「{code.name}」的流失" if recorded else "该流失事件已记录过"


def _joined(session: Session, fields: dict[str, str]) -> str:
    members = [m for m in fields.get("MemChangeList", "").split(",") if m]
    joined = 0
    for member in members[:500]:
        customer = hash_customer(member)
        code = _source_code(session, customer, None)
        if code is not None:
            joined += add_event(
                session, code, _moment(fields), EventType.JOIN_GROUP, customer, None, "callback"
            )
    scene = fields.get("JoinScene", "")
    return f"{len(members)} 人入群（方式 {scene or '未知'}），其中 {joined} 位来自活码"
