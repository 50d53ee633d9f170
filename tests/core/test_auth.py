"""Passwords, lockout, sessions that expire when idle or old, logout."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from core.platform import auth
from core.platform.clock import utcnow
from db.engine import get_engine
from db.models import AuditLog, AuthSession, Role, User
from tests.factories import PASSWORD, make_tree, make_user


@pytest.fixture
def manager(session: Session):
    make_tree(session)
    return make_user(session, "manager", Role.OUTLET_MANAGER, "O111")


def test_passwords_are_argon2_hashed(session: Session, manager) -> None:
    user = session.exec(select(User).where(User.username == "manager")).one()
    assert user.password_hash.startswith("$argon2") and PASSWORD not in user.password_hash


def test_login_opens_a_session_and_the_token_finds_the_actor(session: Session, manager) -> None:
    result = auth.login(session, "manager", PASSWORD)
    assert result.token and result.refusal is None
    actor = auth.actor_for_token(session, result.token)
    assert (
        actor.username == "manager"
        and actor.role is Role.OUTLET_MANAGER
        and actor.outlet_id == manager.outlet_id
    )
    stored = session.exec(select(AuthSession)).one()
    assert stored.token_hash != result.token  # only the hash is stored


def test_wrong_password_and_unknown_user_are_refused_alike(session: Session, manager) -> None:
    assert auth.login(session, "manager", "wrong").refusal is auth.LoginRefusal.BAD_CREDENTIALS
    assert auth.login(session, "ghost", PASSWORD).refusal is auth.LoginRefusal.BAD_CREDENTIALS


def test_five_failures_lock_for_fifteen_minutes_even_with_the_right_password(
    session: Session, manager
) -> None:
    now = utcnow()
    for _ in range(4):
        assert (
            auth.login(session, "manager", "bad", now=now).refusal
            is auth.LoginRefusal.BAD_CREDENTIALS
        )
    fifth = auth.login(session, "manager", "bad", now=now)
    assert fifth.refusal is auth.LoginRefusal.LOCKED
    assert fifth.locked_until == now + timedelta(minutes=15)
    assert (
        auth.login(session, "manager", PASSWORD, now=now + timedelta(minutes=14)).refusal
        is auth.LoginRefusal.LOCKED
    )
    assert auth.login(
        session, "manager", PASSWORD, now=now + timedelta(minutes=15, seconds=1)
    ).token
    actions = session.execute(sa.select(AuditLog.action)).scalars().all()
    assert actions.count("auth.login_failed") == 5 and "auth.locked" in actions


def test_success_resets_the_failure_count(session: Session, manager) -> None:
    for _ in range(4):
        auth.login(session, "manager", "bad")
    assert auth.login(session, "manager", PASSWORD).token
    for _ in range(4):
        auth.login(session, "manager", "bad")
    assert auth.login(session, "manager", PASSWORD).token  # 4 + 4 did not add up to a lock


def test_idle_session_expires_and_activity_keeps_it_alive(
    session: Session, manager, monkeypatch
) -> None:
    monkeypatch.setenv("SESSION_IDLE_MINUTES", "30")
    auth.get_settings.cache_clear()
    now = utcnow()
    token = auth.login(session, "manager", PASSWORD, now=now).token
    assert auth.actor_for_token(session, token, now=now + timedelta(minutes=20))
    assert auth.actor_for_token(
        session, token, now=now + timedelta(minutes=45)
    )  # 25 min after last use
    assert auth.actor_for_token(session, token, now=now + timedelta(minutes=80)) is None
    assert session.exec(select(AuthSession)).first() is None  # the expired row is gone


def test_session_ends_after_max_hours_even_when_active(session: Session, manager) -> None:
    now = utcnow()
    token = auth.login(session, "manager", PASSWORD, now=now).token
    moment = now
    for _ in range(13):
        moment += timedelta(hours=1)
        alive = auth.actor_for_token(session, token, now=moment)
    assert alive is None


def test_logout_deletes_the_session(session: Session, manager) -> None:
    token = auth.login(session, "manager", PASSWORD).token
    auth.logout(session, token)
    assert auth.actor_for_token(session, token) is None
    assert auth.actor_for_token(session, "forged-token") is None


def test_inactive_user_cannot_log_in(session: Session, manager) -> None:
    user = session.exec(select(User).where(User.username == "manager")).one()
    user.active = False
    session.add(user)
    session.commit()
    assert auth.login(session, "manager", PASSWORD).refusal is auth.LoginRefusal.BAD_CREDENTIALS


@pytest.mark.parametrize(
    ("password", "ok"),
    [("short1", False), ("onlyletters", False), ("12345678", False), ("Demo2026", True)],
)
def test_password_policy(password: str, ok: bool) -> None:
    assert (auth.password_problems(password) == []) is ok


def test_concurrent_failures_all_count_and_no_transaction_is_open_while_hashing(
    session: Session, manager, db_url: str, monkeypatch
) -> None:
    """Five wrong passwords checked side by side: the checks overlap (none holds a lock or a
    transaction while hashing) and every failure is counted, so the fifth locks the account."""
    attempts = 5
    side_by_side = threading.Barrier(attempts, timeout=15)
    mine = threading.local()
    open_while_hashing = []
    real_verify = auth.verify_password

    def verify(password_hash: str, password: str) -> bool:
        open_while_hashing.append(mine.session.in_transaction())
        side_by_side.wait()  # all five have read the account before any writes its outcome
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", verify)

    def attempt() -> auth.LoginResult:
        with Session(get_engine(db_url), expire_on_commit=False) as own:
            mine.session = own
            return auth.login(own, "manager", "wrong")

    with ThreadPoolExecutor(attempts) as pool:
        results = list(pool.map(lambda _: attempt(), range(attempts)))
    assert open_while_hashing == [False] * attempts
    refusals = sorted(r.refusal for r in results)
    assert refusals == [auth.LoginRefusal.BAD_CREDENTIALS] * 4 + [auth.LoginRefusal.LOCKED]
    session.rollback()
    user = session.exec(select(User).where(User.username == "manager")).one()
    assert user.locked_until is not None and user.failed_logins == 0
    summaries = session.execute(
        sa.select(AuditLog.action, AuditLog.summary).order_by(AuditLog.id)
    ).all()
    assert sorted(s for a, s in summaries if a == "auth.login_failed") == [
        f"密码错误（第 {n} 次）" for n in range(1, 5)
    ]
    assert [a for a, _ in summaries].count("auth.locked") == 1
