"""The HTTP routes beside the app: login sets an HttpOnly cookie, lockout, logout, health."""

import pytest
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core import auth
from db.engine import get_engine
from db.models import Role
from tests.factories import PASSWORD, make_tree, make_user
from ui.routes import routes
from ui.widgets import SESSION_COOKIE


@pytest.fixture
def client(db_url: str) -> TestClient:
    with Session(get_engine(db_url)) as session:
        make_tree(session)
        make_user(session, "manager", Role.OUTLET_MANAGER, "O111")
    return TestClient(Starlette(routes=routes), follow_redirects=False)


def _login(client: TestClient, password: str, next_path: str = "") -> object:
    return client.post(
        "/auth/login", data={"username": "manager", "password": password, "next": next_path}
    )


def test_login_sets_an_httponly_strict_cookie_that_finds_the_user(
    client: TestClient, db_url: str
) -> None:
    response = _login(client, PASSWORD, "import")
    assert response.status_code == 303 and response.headers["location"] == "/import"
    cookie = response.headers["set-cookie"]
    assert (
        cookie.startswith(f"{SESSION_COOKIE}=")
        and "HttpOnly" in cookie
        and "SameSite=strict" in cookie
    )
    token = response.cookies[SESSION_COOKIE]
    with Session(get_engine(db_url)) as session:
        assert auth.actor_for_token(session, token).username == "manager"


def test_wrong_password_redirects_with_a_reason_and_no_cookie(client: TestClient) -> None:
    response = _login(client, "nope")
    assert response.headers["location"] == "/?login=failed" and "set-cookie" not in response.headers


def test_lockout_is_reported_with_minutes(client: TestClient) -> None:
    for _ in range(4):
        _login(client, "nope")
    response = _login(client, "nope")
    assert response.headers["location"] == "/?login=locked&minutes=15"
    assert _login(client, PASSWORD).headers["location"].startswith("/?login=locked")


@pytest.mark.parametrize("evil", ["https://evil.example", "//evil.example", "/../x", "a/b"])
def test_next_cannot_redirect_elsewhere(client: TestClient, evil: str) -> None:
    assert _login(client, PASSWORD, evil).headers["location"] == "/"


def test_logout_ends_the_session_and_clears_the_cookie(client: TestClient, db_url: str) -> None:
    token = _login(client, PASSWORD).cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, token)
    response = client.get("/auth/logout")
    assert response.status_code == 303 and f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    with Session(get_engine(db_url)) as session:
        assert auth.actor_for_token(session, token) is None


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").text == "ok"
