"""The audit trail: typed events only, filters, admins only."""

from datetime import timedelta

import pytest
from sqlmodel import Session

from core.platform import audit
from core.platform.audit import AuditAction, AuditFilter, list_audit
from core.platform.clock import shanghai_today
from core.platform.errors import PermissionDenied
from db.models import Role
from tests.factories import make_tree, make_users


def test_unknown_event_types_are_refused(session: Session) -> None:
    with pytest.raises(TypeError):
        audit.record(session, actor=None, action="made.up")  # type: ignore[arg-type]


def test_filters(session: Session) -> None:
    make_tree(session)
    users = make_users(session)
    admin = users[Role.ADMIN]
    audit.record(session, actor=admin, action=AuditAction.USER_CREATE, summary="新建用户 alice")
    audit.record(
        session,
        actor=users[Role.CITY_PLANNER],
        action=AuditAction.METRICS_IMPORT,
        summary="导入 m.csv",
    )
    session.commit()
    everything = list_audit(session, actor=admin, filters=AuditFilter())
    assert [e.action for e in everything] == ["metrics.import", "user.create"]  # newest first
    assert [
        e.summary for e in list_audit(session, actor=admin, filters=AuditFilter(actor_name="plan"))
    ] == ["导入 m.csv"]
    only = list_audit(session, actor=admin, filters=AuditFilter(actions=(AuditAction.USER_CREATE,)))
    assert [e.action_label for e in only] == ["新建用户"]
    assert (
        list_audit(session, actor=admin, filters=AuditFilter(text="alice"))[0].action
        == "user.create"
    )
    today = shanghai_today()
    assert len(list_audit(session, actor=admin, filters=AuditFilter(start=today, end=today))) == 2
    old = AuditFilter(start=today - timedelta(days=9), end=today - timedelta(days=1))
    assert list_audit(session, actor=admin, filters=old) == []


@pytest.mark.parametrize(
    "role", [Role.PROVINCE_REVIEWER, Role.CITY_PLANNER, Role.OUTLET_MANAGER, Role.DESIGNER]
)
def test_only_admins_read_the_audit_log(session: Session, role: Role) -> None:
    make_tree(session)
    with pytest.raises(PermissionDenied):
        list_audit(session, actor=make_users(session)[role], filters=AuditFilter())


def test_entries_name_people_and_objects_and_read_as_sentences(session: Session) -> None:
    from db.models import User

    tree = make_tree(session)
    users = make_users(session)
    admin = users[Role.ADMIN]
    alice = User(username="alice", display_name="李娜", password_hash="x", role=Role.DESIGNER)
    session.add(alice)
    session.commit()
    audit.record(
        session,
        actor=admin,
        action=AuditAction.USER_CREATE,
        target_type="user",
        target_id=alice.id,
        before={"active": True},
        after={"active": False},
    )
    city = tree.cities["C1"]
    audit.record(
        session,
        actor=admin,
        action=AuditAction.USER_CREATE,
        target_type="city_budget",
        target_id=f"{city.id}/2027",
        after={"cap_fen": 180_000_000},
    )
    audit.record(
        session, actor=admin, action=AuditAction.USER_CREATE, target_type="campaign", target_id=99
    )
    session.commit()
    gone, budget, user = list_audit(session, actor=admin, filters=AuditFilter())
    assert user.target == "用户「李娜」"
    assert budget.target == f"{city.name} 2027 年预算"
    assert gone.target == "活动（编号 99，已删除）"
    assert audit.describe_change(user.before, user.after) == "启用：是 → 否"
    assert audit.describe_change(budget.before, budget.after) == "年度预算：180万元"
    assert audit.describe_change(None, None) == ""
