"""Local accounts: argon2 passwords, lockout after repeated failures, server-side sessions.

The browser holds a random token in an HttpOnly cookie; the database holds only its
SHA-256, so several app processes share sessions and a stolen database cannot log in.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, delete, select

from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.clock import utcnow
from core.platform.permissions import Actor
from core.platform.settings import get_settings
from db.engine import write_transaction
from db.models import AuthSession, OrgLevel, OrgUnit, User

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# Touch `last_seen_at` at most this often: every rerun of a page asks for the user.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)

_hasher = PasswordHasher()
# Verifying against a dummy hash for unknown users keeps the timing of both refusals alike.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _lower_priority() -> None:
    # Linux: the nice value belongs to this thread only, and the threads argon2 starts for
    # its lanes inherit it. Elsewhere it stays as it is.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


# Every password check runs on this one low-priority thread: one argon2 check takes ~0.13 s
# of both cores, and scans, which answer customers, must come first when they compete.
HASHING_NICENESS = 10
_checker = ThreadPoolExecutor(1, thread_name_prefix="password-check", initializer=_lower_priority)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(password_hash: str, password: str) -> bool:
    return _checker.submit(_verify, password_hash, password).result()


def password_problems(password: str) -> list[str]:
    """Reasons a new password is refused (empty when it is acceptable)."""
    problems = []
    if len(password) < 8:
        problems.append("密码至少 8 位")
    if not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        problems.append("密码须同时包含字母和数字")
    return problems


class LoginRefusal(StrEnum):
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"


@dataclass(frozen=True)
class LoginResult:
    token: str | None = None
    refusal: LoginRefusal | None = None
    locked_until: datetime | None = None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _Candidate:
    """What a login attempt needs to know about the account, read before the password check."""

    id: int
    username: str
    password_hash: str
    locked_until: datetime | None


def login(
    session: Session, username: str, password: str, *, now: datetime | None = None
) -> LoginResult:
    """Check the password, apply the lockout rule and open a session.

    The argon2 check (about 0.1 s of both cores) runs with no transaction open: inside the
    write transaction it held SQLite's write lock, so a login flood stalled every scan. The
    outcome is written afterwards in a short transaction that re-checks what was read
    (lock, password, active) and counts failures in SQL, so concurrent failures all count.
    """
    now = now or utcnow()
    username = (username or "").strip()
    candidate = _read_candidate(session, username)
    if candidate is None:
        verify_password(_DUMMY_HASH, password or "")  # same cost as a known name
        return _refuse_unknown(session, username)
    if candidate.locked_until and candidate.locked_until > now:
        verify_password(_DUMMY_HASH, password or "")  # a locked account answers as slowly
        return _refuse_locked(session, candidate, candidate.locked_until)
    if not verify_password(candidate.password_hash, password or ""):
        return _register_failure(session, candidate, now)
    return _open_session(session, candidate, now)


def _read_candidate(session: Session, username: str) -> _Candidate | None:
    row = session.execute(
        sa.select(User.id, User.username, User.password_hash, User.locked_until).where(
            User.username == username, User.active.is_(True)
        )
    ).first()
    # End the read transaction: nothing stays open while the password is hashed.
    session.commit()
    return _Candidate(*row) if row else None


def _not_locked(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(User.locked_until.is_(None), User.locked_until <= now)


def _refuse_unknown(session: Session, username: str) -> LoginResult:
    with write_transaction(session):
        audit.record(
            session,
            actor=None,
            actor_name=username[:64] or "anonymous",
            action=AuditAction.LOGIN_FAILED,
            summary="用户名不存在或已停用",
        )
    return LoginResult(refusal=LoginRefusal.BAD_CREDENTIALS)


def _refuse_locked(session: Session, candidate: _Candidate, until: datetime | None) -> LoginResult:
    with write_transaction(session):
        _audit_locked_attempt(session, candidate)
    return LoginResult(refusal=LoginRefusal.LOCKED, locked_until=until)


def _audit_locked_attempt(session: Session, candidate: _Candidate) -> None:
    audit.record(
        session,
        actor=None,
        actor_name=candidate.username,
        action=AuditAction.LOGIN_FAILED,
        target_type="user",
        target_id=candidate.id,
        summary="账户锁定期间尝试登录",
    )


def _register_failure(session: Session, candidate: _Candidate, now: datetime) -> LoginResult:
    with write_transaction(session):
        # Counted in SQL: of two failures checked side by side, both count. A row that got
        # locked meanwhile (by those side-by-side failures) no longer matches.
        failures = session.execute(
            sa.update(User)
            .where(User.id == candidate.id, _not_locked(now))
            .values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if failures is None:
            _audit_locked_attempt(session, candidate)
            return LoginResult(
                refusal=LoginRefusal.LOCKED, locked_until=_locked_until(session, candidate)
            )
        if failures >= MAX_FAILED_LOGINS:
            return _lock(session, candidate, now)
        audit.record(
            session,
            actor=None,
            actor_name=candidate.username,
            action=AuditAction.LOGIN_FAILED,
            target_type="user",
            target_id=candidate.id,
            summary=f"密码错误（第 {failures} 次）",
        )
    return LoginResult(refusal=LoginRefusal.BAD_CREDENTIALS)


def _lock(session: Session, candidate: _Candidate, now: datetime) -> LoginResult:
    until = now + LOCKOUT
    session.execute(
        sa.update(User)
        .where(User.id == candidate.id)
        .values(failed_logins=0, locked_until=until)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=None,
        actor_name=candidate.username,
        action=AuditAction.ACCOUNT_LOCKED,
        target_type="user",
        target_id=candidate.id,
        summary=f"连续 {MAX_FAILED_LOGINS} 次密码错误，锁定 {LOCKOUT.seconds // 60} 分钟",
    )
    return LoginResult(refusal=LoginRefusal.LOCKED, locked_until=until)


def _locked_until(session: Session, candidate: _Candidate) -> datetime | None:
    return session.execute(
        sa.select(User.locked_until).where(User.id == candidate.id)
    ).scalar_one_or_none()


def _open_session(session: Session, candidate: _Candidate, now: datetime) -> LoginResult:
    with write_transaction(session):
        # The account may have been locked, deactivated or given a new password while the
        # password was checked: then the check no longer counts.
        opened = session.execute(
            sa.update(User)
            .where(
                User.id == candidate.id,
                User.active.is_(True),
                User.password_hash == candidate.password_hash,
                _not_locked(now),
            )
            .values(failed_logins=0, locked_until=None, last_login_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if opened != 1:
            until = _locked_until(session, candidate)
            if until is not None and until > now:
                _audit_locked_attempt(session, candidate)
                return LoginResult(refusal=LoginRefusal.LOCKED, locked_until=until)
            return LoginResult(refusal=LoginRefusal.BAD_CREDENTIALS)
        token = secrets.token_urlsafe(32)
        session.add(
            AuthSession(
                token_hash=_token_hash(token),
                user_id=candidate.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=get_settings().session_max_hours),
            )
        )
        user = session.get(User, candidate.id, populate_existing=True)
        audit.record(
            session,
            actor=_actor_for(session, user),
            action=AuditAction.LOGIN,
            target_type="user",
            target_id=user.id,
        )
    return LoginResult(token=token)


def actor_for_token(
    session: Session, token: str | None, *, now: datetime | None = None
) -> Actor | None:
    """The logged-in user behind a cookie token, or None when absent, expired or idle too long."""
    if not token:
        return None
    now = now or utcnow()
    row = session.exec(
        select(AuthSession).where(AuthSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    idle_limit = timedelta(minutes=get_settings().session_idle_minutes)
    expired = row.expires_at <= now or row.last_seen_at + idle_limit <= now
    user = session.get(User, row.user_id)
    if expired or user is None or not user.active:
        with write_transaction(session):
            session.exec(delete(AuthSession).where(AuthSession.id == row.id))
        return None
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        with write_transaction(session):
            row = session.get(AuthSession, row.id)
            if row is not None:
                row.last_seen_at = now
    return _actor_for(session, user)


def logout(session: Session, token: str | None) -> None:
    if not token:
        return
    with write_transaction(session):
        row = session.exec(
            select(AuthSession).where(AuthSession.token_hash == _token_hash(token))
        ).first()
        if row is None:
            return
        user = session.get(User, row.user_id)
        session.delete(row)
        if user is not None:
            audit.record(
                session,
                actor=_actor_for(session, user),
                action=AuditAction.LOGOUT,
                target_type="user",
                target_id=user.id,
            )


def end_sessions_of(session: Session, user_id: int) -> None:
    """Log a user out everywhere (inside the caller's transaction)."""
    session.exec(delete(AuthSession).where(AuthSession.user_id == user_id))


def _actor_for(session: Session, user: User) -> Actor:
    org = session.get(OrgUnit, user.org_id) if user.org_id else None
    city_id = outlet_id = None
    if org is not None:
        city_id = org.id if org.level == OrgLevel.CITY else org.city_id
        outlet_id = org.id if org.level == OrgLevel.OUTLET else None
    return Actor(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        org_id=user.org_id,
        city_id=city_id,
        outlet_id=outlet_id,
    )


def actor_for_user(session: Session, username: str) -> Actor | None:
    """The actor of a user by name (for the CLI and tests)."""
    user = session.exec(select(User).where(User.username == username)).first()
    return _actor_for(session, user) if user else None
