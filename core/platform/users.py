"""User accounts (用户): create, list, unlock, activate and reset passwords."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.auth import end_sessions_of, hash_password, password_problems
from core.platform.clock import utcnow
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import OrgLevel, OrgUnit, Role, User

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")

# The org level each role must be attached to (None: the whole province, no org needed).
ROLE_ORG_LEVEL: dict[Role, OrgLevel | None] = {
    Role.ADMIN: None,
    Role.PROVINCE_REVIEWER: None,
    Role.DESIGNER: None,
    Role.CITY_PLANNER: OrgLevel.CITY,
    Role.OUTLET_MANAGER: OrgLevel.OUTLET,
}


@dataclass(frozen=True)
class UserCreate:
    username: str
    display_name: str
    role: Role
    password: str
    org_code: str = ""


@dataclass(frozen=True)
class UserRead:
    id: int
    username: str
    display_name: str
    role: Role
    org_code: str
    org_name: str
    active: bool
    locked: bool
    last_login_at: datetime | None


def _validate(session: Session, data: UserCreate) -> tuple[list[FieldProblem], OrgUnit | None]:
    problems: list[FieldProblem] = []
    if not USERNAME_PATTERN.match(data.username):
        problems.append(
            FieldProblem("username", "用户名须为 3–32 位字母、数字、下划线、点或连字符")
        )
    elif session.exec(select(User).where(User.username == data.username)).first():
        problems.append(FieldProblem("username", f"用户名 {data.username} 已存在"))
    if not data.display_name.strip():
        problems.append(FieldProblem("display_name", "姓名不能为空"))
    problems += [FieldProblem("password", p) for p in password_problems(data.password)]
    org = None
    wanted = ROLE_ORG_LEVEL[data.role]
    if data.org_code.strip():
        org = session.exec(select(OrgUnit).where(OrgUnit.code == data.org_code.strip())).first()
        if org is None:
            problems.append(FieldProblem("org_code", f"机构编码 {data.org_code} 不存在"))
    org_reported = any(p.field == "org_code" for p in problems)
    if wanted is not None and (org is None or org.level != wanted) and not org_reported:
        problems.append(
            FieldProblem(
                "org_code", f"{data.role.label}须归属一个{wanted.label}（请填写{wanted.label}编码）"
            )
        )
    return problems, org


def create_user(session: Session, *, actor: Actor, data: UserCreate) -> UserRead:
    ensure_allowed(actor, Action.MANAGE_USERS)
    data = UserCreate(
        username=data.username.strip(),
        display_name=data.display_name.strip(),
        role=Role(data.role),
        password=data.password,
        org_code=data.org_code.strip(),
    )
    with write_transaction(session):
        problems, org = _validate(session, data)
        if problems:
            raise ValidationFailed(problems, summary="无法创建用户")
        user = User(
            username=data.username,
            display_name=data.display_name,
            role=data.role,
            org_id=org.id if org else None,
            password_hash=hash_password(data.password),
        )
        session.add(user)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action=AuditAction.USER_CREATE,
            target_type="user",
            target_id=user.id,
            summary=f"新建用户 {user.username}（{user.role.label}）",
            after=_snapshot(user, org),
        )
    return _read(user, org)


def list_users(session: Session, *, actor: Actor) -> list[UserRead]:
    ensure_allowed(actor, Action.MANAGE_USERS)
    rows = session.exec(
        select(User, OrgUnit)
        .join(OrgUnit, col(User.org_id) == OrgUnit.id, isouter=True)
        .order_by(col(User.username))
    ).all()
    return [_read(user, org) for user, org in rows]


def unlock_user(session: Session, *, actor: Actor, user_id: int) -> None:
    ensure_allowed(actor, Action.MANAGE_USERS)
    with write_transaction(session):
        user = _get(session, user_id)
        before = {"locked_until": str(user.locked_until) if user.locked_until else None}
        user.locked_until = None
        user.failed_logins = 0
        audit.record(
            session,
            actor=actor,
            action=AuditAction.USER_UNLOCK,
            target_type="user",
            target_id=user.id,
            summary=f"解锁用户 {user.username}",
            before=before,
            after={"locked_until": None},
        )


def set_active(session: Session, *, actor: Actor, user_id: int, active: bool) -> None:
    ensure_allowed(actor, Action.MANAGE_USERS)
    with write_transaction(session):
        user = _get(session, user_id)
        if user.id == actor.user_id and not active:
            raise ValidationFailed([FieldProblem("active", "不能停用自己的账户")])
        before = {"active": user.active}
        user.active = active
        if not active:
            end_sessions_of(session, user.id)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.USER_UPDATE,
            target_type="user",
            target_id=user.id,
            summary=f"{'启用' if active else '停用'}用户 {user.username}",
            before=before,
            after={"active": active},
        )


def reset_password(session: Session, *, actor: Actor, user_id: int, new_password: str) -> None:
    ensure_allowed(actor, Action.MANAGE_USERS)
    problems = password_problems(new_password)
    if problems:
        raise ValidationFailed(
            [FieldProblem("password", p) for p in problems], summary="密码不符合要求"
        )
    with write_transaction(session):
        user = _get(session, user_id)
        user.password_hash = hash_password(new_password)
        user.failed_logins = 0
        user.locked_until = None
        end_sessions_of(session, user.id)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.USER_PASSWORD_RESET,
            target_type="user",
            target_id=user.id,
            summary=f"重置用户 {user.username} 的密码",
        )


def _get(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"用户 {user_id} 不存在")
    return user


def _snapshot(user: User, org: OrgUnit | None) -> dict[str, object]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "org_code": org.code if org else None,
        "active": user.active,
    }


def _read(user: User, org: OrgUnit | None) -> UserRead:
    return UserRead(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        org_code=org.code if org else "",
        org_name=org.name if org else "全省",
        active=user.active,
        locked=bool(user.locked_until and user.locked_until > utcnow()),
        last_login_at=user.last_login_at,
    )
