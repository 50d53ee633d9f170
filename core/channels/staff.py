"""Staff behind the codes (接待员工): a leaver's customers and code places handed to a
colleague (离职继承)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from core.channels.wecom_queue import queue_contact_way, queue_transfer
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.clock import shanghai_today
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import (
    ChannelCodeStaff,
    ChannelEvent,
    EventType,
    OrgUnit,
    Staff,
    StaffHandover,
)


def hand_over(session: Session, *, actor: Actor, from_staff_id: int, to_staff_id: int) -> int:
    """离职继承: mark a staff member as left and give their customers (events) and their
    place in code pools to a colleague of the same outlet. Returns customers moved."""
    with write_transaction(session):
        leaver, heir = session.get(Staff, from_staff_id), session.get(Staff, to_staff_id)
        if leaver is None or heir is None:
            raise NotFound("员工不存在")
        outlet = session.get(OrgUnit, leaver.outlet_id)
        ensure_allowed(actor, Action.MANAGE_CHANNEL_CODES, outlet)
        if heir.outlet_id != leaver.outlet_id or not heir.active or heir.id == leaver.id:
            raise ValidationFailed([FieldProblem("to_staff", "继承人须是同一网点在职的另一名员工")])
        customers = session.execute(
            sa.select(sa.func.count(sa.distinct(ChannelEvent.customer))).where(
                ChannelEvent.staff_id == leaver.id, ChannelEvent.event_type == EventType.ADD_FRIEND
            )
        ).scalar_one()
        session.execute(
            sa.update(ChannelEvent)
            .where(ChannelEvent.staff_id == leaver.id)
            .values(staff_id=heir.id)
        )
        links = session.exec(
            select(ChannelCodeStaff).where(ChannelCodeStaff.staff_id == leaver.id)
        ).all()
        for link in links:
            taken = session.get(ChannelCodeStaff, (link.code_id, heir.id))
            if taken is None:
                session.add(
                    ChannelCodeStaff(
                        code_id=link.code_id,
                        staff_id=heir.id,
                        position=link.position,
                        fallback=link.fallback,
                        assigned_total=link.assigned_total,
                    )
                )
            session.delete(link)
        # Live WeCom: the customers move in WeCom too, and the codes' contact ways follow.
        queue_transfer(session, from_userid=leaver.wecom_userid, to_userid=heir.wecom_userid)
        for code_id in {link.code_id for link in links}:
            queue_contact_way(session, code_id)
        leaver.active, leaver.left_on = False, shanghai_today()
        session.add(leaver)
        session.add(
            StaffHandover(
                from_staff_id=leaver.id,
                to_staff_id=heir.id,
                customers=customers,
                by_user_id=actor.user_id,
            )
        )
        audit.record(
            session,
            actor=actor,
            action=AuditAction.STAFF_HANDOVER,
            target_type="staff",
            target_id=leaver.id,
            summary=f"{leaver.name} 离职，{customers} 位客户由 {heir.name} 继承",
            after={"to_staff": heir.id, "customers": customers},
        )
        return customers
