"""Changing a channel code after it was made: edit its settings, extend its validity,
change its staff pool (re-staff) and disable or re-enable it. These are the ways out of
the dead-code alert ("请更换接待员工、延长有效期或停用该活码"). Each is one core function:
permission and scope first, then validation, then one transaction with an audit record."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from core.channels.codes import (
    CodeInput,
    CodeRead,
    code_outlet,
    code_pool,
    code_problems,
    read_code,
)
from core.channels.wecom_queue import queue_contact_way
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.clock import shanghai_today, utcnow
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import ChannelCode, ChannelCodeStaff, OrgUnit

STAFF_FIELD = "staff"


def _managed_code(session: Session, actor: Actor, code_id: int) -> tuple[ChannelCode, OrgUnit]:
    """The code and its outlet, once the actor may manage codes there."""
    code = session.get(ChannelCode, code_id)
    if code is None:
        raise NotFound("活码不存在")
    outlet = code_outlet(session, code.outlet_id)
    ensure_allowed(actor, Action.MANAGE_CHANNEL_CODES, outlet)
    return code, outlet


def code_input(session: Session, *, actor: Actor, code_id: int) -> CodeInput:
    """The stored code as the form holds it (to prefill an edit)."""
    code, _ = _managed_code(session, actor, code_id)
    pool = code_pool(session, code)
    return CodeInput(
        name=code.name,
        channel_type=code.channel_type,
        outlet_id=code.outlet_id,
        staff_ids=tuple(s.id for m, s in pool if not m.fallback and s.active),
        fallback_staff_ids=tuple(s.id for m, s in pool if m.fallback and s.active),
        rule=code.rule,
        daily_cap=code.daily_cap,
        tags=tuple(code.tags),
        welcome_message=code.welcome_message,
        campaign_id=code.campaign_id,
        merchant_id=code.merchant_id,
        active_from=code.active_from,
        active_until=code.active_until,
        max_adds=code.max_adds,
        slots=code.slots,
    )


_EDITABLE = (
    "name",
    "channel_type",
    "rule",
    "daily_cap",
    "tags",
    "welcome_message",
    "campaign_id",
    "merchant_id",
    "active_from",
    "active_until",
    "max_adds",
    "slots",
)


def _snapshot(code: ChannelCode) -> dict[str, object]:
    values = {field: getattr(code, field) for field in _EDITABLE}
    for field in ("active_from", "active_until"):
        values[field] = values[field].isoformat() if values[field] else None
    values["tags"] = list(values["tags"] or [])
    return values


def edit_code(session: Session, *, actor: Actor, code_id: int, data: CodeInput) -> CodeRead:
    """Change a code's settings (not its outlet, slug or staff pool: see `restaff_code`).

    The staff fields of `data` are ignored: a code whose staff all left can still be
    edited, and its pool is changed through re-staffing."""
    code, outlet = _managed_code(session, actor, code_id)
    if data.outlet_id != code.outlet_id:
        raise ValidationFailed([FieldProblem("outlet", "活码的网点不能修改，请新建活码")])
    problems = [
        p
        for p in code_problems(session, actor, data, outlet)
        if p.field != STAFF_FIELD
        # a campaign the code already carries may have ended since: keeping it is no new binding
        and not (p.field == "campaign" and data.campaign_id == code.campaign_id)
    ]
    if problems:
        raise ValidationFailed(problems, summary="活码未修改")
    before = _snapshot(code)
    with write_transaction(session):
        code = session.get(ChannelCode, code_id)
        code.name = data.name.strip()
        for field in _EDITABLE[1:]:
            value = getattr(data, field)
            setattr(code, field, list(value) if field == "tags" else value)
        code.updated_at = utcnow()
        session.add(code)
        after = _snapshot(code)
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        audit.record(
            session,
            actor=actor,
            action=AuditAction.CODE_UPDATE,
            target_type="channel_code",
            target_id=code.id,
            summary=f"修改活码「{code.name}」（{outlet.name}）",
            before={k: before[k] for k in changed},
            after=changed,
        )
        _after_change(session, code)
    return read_code(session, code)


def extend_code(
    session: Session, *, actor: Actor, code_id: int, active_until: date | None
) -> CodeRead:
    """Extend (or end-date) a code's validity; None = no end date."""
    code, outlet = _managed_code(session, actor, code_id)
    today = shanghai_today()
    if active_until is not None and active_until < today:
        raise ValidationFailed([FieldProblem("active_until", "新的有效期不能早于今天")])
    if active_until is not None and code.active_from and active_until < code.active_from:
        raise ValidationFailed([FieldProblem("active_until", "有效期不能早于开始日期")])
    before = code.active_until.isoformat() if code.active_until else None
    with write_transaction(session):
        code = session.get(ChannelCode, code_id)
        code.active_until, code.updated_at = active_until, utcnow()
        session.add(code)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.CODE_EXTEND,
            target_type="channel_code",
            target_id=code.id,
            summary=f"活码「{code.name}」有效期改为{active_until or '长期有效'}（{outlet.name}）",
            before={"active_until": before},
            after={"active_until": active_until.isoformat() if active_until else None},
        )
        _after_change(session, code)
    return read_code(session, code)


def restaff_code(
    session: Session,
    *,
    actor: Actor,
    code_id: int,
    staff_ids: tuple[int, ...],
    fallback_staff_ids: tuple[int, ...] = (),
) -> CodeRead:
    """Replace a code's staff pool (primaries in order, then fallbacks). Staff kept in the
    pool keep their counters, so least-loaded and daily caps stay fair."""
    code, outlet = _managed_code(session, actor, code_id)
    current = code_input(session, actor=actor, code_id=code_id)
    data = CodeInput(
        **{**current.__dict__, "staff_ids": staff_ids, "fallback_staff_ids": fallback_staff_ids}
    )
    problems = [p for p in code_problems(session, actor, data, outlet) if p.field == STAFF_FIELD]
    if problems:
        raise ValidationFailed(problems, summary="接待员工未更换")
    pool = code_pool(session, code)
    old = {
        m.staff_id: {
            "fallback": m.fallback,
            "assigned_total": m.assigned_total,
            "assigned_today": m.assigned_today,
            "today": m.today,
        }
        for m, _ in pool
    }
    for member, _ in pool:  # replaced below by rows with the same keys
        session.expunge(member)
    before = {
        "staff": [i for i, m in old.items() if not m["fallback"]],
        "fallback": [i for i, m in old.items() if m["fallback"]],
    }
    with write_transaction(session):
        session.execute(sa.delete(ChannelCodeStaff).where(ChannelCodeStaff.code_id == code_id))
        members = [(i, False) for i in staff_ids] + [(i, True) for i in fallback_staff_ids]
        for position, (staff_id, fallback) in enumerate(members):
            kept = {**old.get(staff_id, {}), "fallback": fallback}
            session.add(
                ChannelCodeStaff(code_id=code_id, staff_id=staff_id, position=position, **kept)
            )
        code = session.get(ChannelCode, code_id)
        code.cursor, code.updated_at = 0, utcnow()
        session.add(code)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.CODE_RESTAFF,
            target_type="channel_code",
            target_id=code_id,
            summary=f"活码「{code.name}」更换接待员工（{outlet.name}）",
            before=before,
            after={"staff": list(staff_ids), "fallback": list(fallback_staff_ids)},
        )
        _after_change(session, code)
    return read_code(session, code)


def set_code_enabled(session: Session, *, actor: Actor, code_id: int, enabled: bool) -> CodeRead:
    """Disable a code (its QR then answers 410) or enable it again."""
    code, outlet = _managed_code(session, actor, code_id)
    if code.enabled == enabled:
        raise ValidationFailed(
            [FieldProblem("enabled", "活码已是启用状态" if enabled else "活码已停用")]
        )
    with write_transaction(session):
        code = session.get(ChannelCode, code_id)
        code.enabled, code.updated_at = enabled, utcnow()
        session.add(code)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.CODE_ENABLE if enabled else AuditAction.CODE_DISABLE,
            target_type="channel_code",
            target_id=code_id,
            summary=f"{'启用' if enabled else '停用'}活码「{code.name}」（{outlet.name}）",
            before={"enabled": not enabled},
            after={"enabled": enabled},
        )
        _after_change(session, code)
    return read_code(session, code)


def _after_change(session: Session, code: ChannelCode) -> None:
    """In live WeCom mode the code's contact way follows the change (created, updated or
    deleted when the queued call runs, from the code as it is then)."""
    queue_contact_way(session, code.id)
