"""Account management by admins, validated and audited."""

import pytest
from sqlmodel import Session, select

from core.platform import auth
from core.platform.errors import PermissionDenied, ValidationFailed
from core.platform.users import (
    UserCreate,
    create_user,
    list_users,
    reset_password,
    set_active,
    unlock_user,
)
from db.models import AuditLog, Role, User
from tests.factories import PASSWORD, make_tree, make_users


@pytest.fixture
def users(session: Session):
    make_tree(session)
    return make_users(session)


def test_admin_creates_a_planner_for_a_city(session: Session, users) -> None:
    created = create_user(
        session,
        actor=users[Role.ADMIN],
        data=UserCreate("zhang", "张三", Role.CITY_PLANNER, "Abcdefg1", "C2"),
    )
    assert created.org_code == "C2" and created.role is Role.CITY_PLANNER
    assert auth.login(session, "zhang", "Abcdefg1").token
    entry = session.exec(select(AuditLog).where(AuditLog.action == "user.create")).one()
    assert entry.after["org_code"] == "C2" and "Abcdefg1" not in str(entry.after)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (UserCreate("a", "张", Role.DESIGNER, "Abcdefg1"), "username"),
        (UserCreate("admin", "张", Role.DESIGNER, "Abcdefg1"), "username"),
        (UserCreate("newone", "", Role.DESIGNER, "Abcdefg1"), "display_name"),
        (UserCreate("newone", "张", Role.DESIGNER, "short"), "password"),
        (UserCreate("newone", "张", Role.CITY_PLANNER, "Abcdefg1", "O111"), "org_code"),
        (UserCreate("newone", "张", Role.OUTLET_MANAGER, "Abcdefg1"), "org_code"),
        (UserCreate("newone", "张", Role.OUTLET_MANAGER, "Abcdefg1", "NOPE"), "org_code"),
    ],
)
def test_bad_input_is_refused_with_the_field(
    session: Session, users, data: UserCreate, field: str
) -> None:
    before = len(session.exec(select(User)).all())
    with pytest.raises(ValidationFailed) as info:
        create_user(session, actor=users[Role.ADMIN], data=data)
    assert field in [p.field for p in info.value.problems]
    assert len(session.exec(select(User)).all()) == before


@pytest.mark.parametrize(
    "role", [Role.CITY_PLANNER, Role.OUTLET_MANAGER, Role.DESIGNER, Role.PROVINCE_REVIEWER]
)
def test_only_admins_manage_users(session: Session, users, role: Role) -> None:
    with pytest.raises(PermissionDenied):
        list_users(session, actor=users[role])
    with pytest.raises(PermissionDenied):
        create_user(
            session, actor=users[role], data=UserCreate("x1y", "x", Role.DESIGNER, "Abcdefg1")
        )


def test_unlock_disable_and_reset(session: Session, users) -> None:
    admin = users[Role.ADMIN]
    manager_id = users[Role.OUTLET_MANAGER].user_id
    for _ in range(5):
        auth.login(session, "manager", "bad")
    assert next(u for u in list_users(session, actor=admin) if u.username == "manager").locked
    unlock_user(session, actor=admin, user_id=manager_id)
    token = auth.login(session, "manager", PASSWORD).token
    assert token
    set_active(session, actor=admin, user_id=manager_id, active=False)
    assert auth.actor_for_token(session, token) is None  # disabling ends sessions
    set_active(session, actor=admin, user_id=manager_id, active=True)
    reset_password(session, actor=admin, user_id=manager_id, new_password="Newpass99")
    assert auth.login(session, "manager", "Newpass99").token
    with pytest.raises(ValidationFailed):
        set_active(session, actor=admin, user_id=admin.user_id, active=False)
    actions = session.exec(select(AuditLog.action)).all()
    assert {"user.unlock", "user.update", "user.password_reset"} <= set(actions)
