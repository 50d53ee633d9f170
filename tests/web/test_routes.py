"""The HTTP routes beside the app: login sets an HttpOnly cookie, refusals that all look
alike, same-origin checks on every state-changing route, a per-address login limit, logout,
health, and the scans (HEAD counts nothing; anything else under /c/ is the customer 404)."""

import threading

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.channels.codes import CodeInput, create_code
from core.platform import auth
from db.engine import get_engine
from db.models import AuditLog, ChannelCode, ChannelEvent, ChannelType, OrgUnit, Role
from tests.factories import PASSWORD, make_staff, make_tree, make_user
from ui import routes as routes_module
from ui.routes import routes
from ui.widgets import SESSION_COOKIE

OWN = {"Origin": "http://testserver"}  # what a browser sends from our own login page


def _client(**kwargs: object) -> TestClient:
    return TestClient(Starlette(routes=routes), follow_redirects=False, headers=OWN, **kwargs)


@pytest.fixture
def client(db_url: str) -> TestClient:
    with Session(get_engine(db_url)) as session:
        make_tree(session)
        make_user(session, "manager", Role.OUTLET_MANAGER, "O111")
    routes_module.login_limiter.clear()
    return _client()


def _login(client: TestClient, password: str, next_path: str = "", **kwargs: object) -> object:
    return client.post(
        "/auth/login",
        data={"username": "manager", "password": password, "next": next_path},
        **kwargs,
    )


def _audit_actions(db_url: str) -> list[str]:
    with Session(get_engine(db_url)) as session:
        return list(session.execute(sa.select(AuditLog.action).order_by(AuditLog.id)).scalars())


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


def test_a_locked_account_answers_exactly_like_an_unknown_name(
    client: TestClient, db_url: str
) -> None:
    unknown = client.post("/auth/login", data={"username": "ghost", "password": "nope"})
    answers = [_login(client, "nope") for _ in range(5)]  # the fifth locks the account
    answers.append(_login(client, PASSWORD))  # right password, but locked
    for answer in answers:
        assert (answer.status_code, answer.headers["location"], answer.text) == (
            unknown.status_code,
            unknown.headers["location"],
            unknown.text,
        )
        assert "set-cookie" not in answer.headers
    actions = _audit_actions(db_url)
    assert actions.count("auth.locked") == 1  # the lockout itself stays, and is audited
    assert actions[-1] == "auth.login_failed"  # so is the attempt while locked


@pytest.mark.parametrize("evil", ["https://evil.example", "//evil.example", "/../x", "a/b"])
def test_next_cannot_redirect_elsewhere(client: TestClient, evil: str) -> None:
    assert _login(client, PASSWORD, evil).headers["location"] == "/"


def test_logout_ends_the_session_and_clears_the_cookie(client: TestClient, db_url: str) -> None:
    token = _login(client, PASSWORD).cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, token)
    response = client.post("/auth/logout")
    assert response.status_code == 303 and f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    with Session(get_engine(db_url)) as session:
        assert auth.actor_for_token(session, token) is None


def test_logout_by_get_is_not_accepted(client: TestClient, db_url: str) -> None:
    token = _login(client, PASSWORD).cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get("/auth/logout").status_code == 405  # an <img src> cannot log anyone out
    with Session(get_engine(db_url)) as session:
        assert auth.actor_for_token(session, token).username == "manager"


# --- forged requests: Origin / Referer ----------------------------------------------------

FORGED = [
    pytest.param({"Origin": "https://evil.example"}, id="other-origin"),
    pytest.param({"Origin": "http://testserver.evil.example"}, id="look-alike-origin"),
    pytest.param({"Origin": "http://testserver:8080"}, id="other-port"),
    pytest.param({"Origin": "null"}, id="opaque-origin"),
    pytest.param({"Origin": "", "Referer": "https://evil.example/login.html"}, id="other-referer"),
    pytest.param({"Origin": ""}, id="neither"),
]


def _forged_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if v}


@pytest.mark.parametrize("headers", FORGED)
def test_a_login_posted_from_another_site_is_refused(
    db_url: str, client: TestClient, headers: dict[str, str]
) -> None:
    # A client without the default Origin header, so that "neither" really sends neither.
    forged = TestClient(Starlette(routes=routes), follow_redirects=False)
    response = _login(forged, PASSWORD, headers=_forged_headers(headers))
    assert response.status_code == 403 and "set-cookie" not in response.headers
    assert "请求来源无法确认" in response.text
    assert _audit_actions(db_url) == []  # refused before the password was even looked at


@pytest.mark.parametrize("headers", FORGED)
def test_a_logout_posted_from_another_site_is_refused(
    db_url: str, client: TestClient, headers: dict[str, str]
) -> None:
    token = _login(client, PASSWORD).cookies[SESSION_COOKIE]
    forged = TestClient(Starlette(routes=routes), follow_redirects=False)
    forged.cookies.set(SESSION_COOKIE, token)
    assert forged.post("/auth/logout", headers=_forged_headers(headers)).status_code == 403
    with Session(get_engine(db_url)) as session:
        assert auth.actor_for_token(session, token).username == "manager"


# Server-to-server routes that prove themselves by a signature, not by a browser's Origin.
SIGNED_ROUTES = {"/wecom/callback"}


def test_every_route_that_takes_a_post_checks_the_origin(client: TestClient) -> None:
    forged = TestClient(Starlette(routes=routes), follow_redirects=False)
    posting = [
        r.path for r in routes if "POST" in (r.methods or ()) and r.path not in SIGNED_ROUTES
    ]
    assert posting  # login and logout at least
    for path in posting:
        assert forged.post(path, headers={"Origin": "https://evil.example"}).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": "http://testserver"}, id="own-origin"),
        pytest.param({"Origin": "HTTP://TestServer:80"}, id="own-origin-default-port"),
        pytest.param({"Origin": "", "Referer": "http://testserver/?login=failed"}, id="referer"),
        pytest.param({"Origin": "https://yh.example.cn"}, id="base-url"),
    ],
)
def test_our_own_pages_may_post(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str]
) -> None:
    monkeypatch.setenv("BASE_URL", "https://yh.example.cn/")  # the address behind a proxy
    auth.get_settings.cache_clear()
    plain = TestClient(Starlette(routes=routes), follow_redirects=False)
    response = _login(plain, PASSWORD, headers=_forged_headers(headers))
    assert response.status_code == 303 and SESSION_COOKIE in response.cookies


# --- a login flood ---------------------------------------------------------------------------


def test_too_many_attempts_from_one_address_are_refused_before_the_password_check(
    client: TestClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGIN_ATTEMPTS_PER_MINUTE", "3")
    auth.get_settings.cache_clear()
    checked = []
    real_verify = auth.verify_password
    monkeypatch.setattr(
        auth, "verify_password", lambda h, p: checked.append(p) or real_verify(h, p)
    )
    unknown = client.post("/auth/login", data={"username": "ghost", "password": "x"})
    assert [_login(client, "nope").headers["location"] for _ in range(2)] == ["/?login=failed"] * 2
    audited = len(_audit_actions(db_url))
    refused = _login(client, PASSWORD)  # the right password, one attempt too many
    assert (refused.status_code, refused.headers["location"]) == (
        unknown.status_code,
        unknown.headers["location"],
    ) and "set-cookie" not in refused.headers
    assert len(checked) == 3 and len(_audit_actions(db_url)) == audited  # no argon2, no write
    other = _client(client=("10.0.0.2", 50000))  # another address is not held back
    assert SESSION_COOKIE in _login(other, PASSWORD).cookies


def test_a_scan_is_answered_while_a_password_is_being_checked(
    client: TestClient, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    slug = _code(db_url).slug
    checking, release = threading.Event(), threading.Event()
    real_verify = auth.verify_password

    def slow_verify(password_hash: str, password: str) -> bool:
        checking.set()
        release.wait(30)
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", slow_verify)
    with _client() as shared:  # one event loop for both requests, as in the server
        login = threading.Thread(target=_login, args=(shared, PASSWORD))
        login.start()
        assert checking.wait(10)
        scanned = []
        scanner = threading.Thread(target=lambda: scanned.append(shared.get(f"/c/{slug}")))
        scanner.start()
        scanner.join(10)
        answered_during_the_check = list(scanned)
        release.set()
        login.join(30)
        scanner.join(30)
    assert answered_during_the_check and answered_during_the_check[0].status_code == 302
    assert scanned[0].headers["location"].startswith("https://work.weixin.qq.com/")


# --- scans -------------------------------------------------------------------------------------


def _code(db_url: str) -> ChannelCode:
    with Session(get_engine(db_url), expire_on_commit=False) as session:
        staff = [make_staff(session, "O111", name) for name in ("张三", "李四")]
        outlet_id = session.exec(select(OrgUnit.id).where(OrgUnit.code == "O111")).one()
        return create_code(
            session,
            actor=make_user(session, "designer", Role.DESIGNER),
            data=CodeInput(
                name="柜台码",
                channel_type=ChannelType.COUNTER,
                outlet_id=outlet_id,
                staff_ids=tuple(staff),
            ),
        )


def _scans(db_url: str, slug: str) -> tuple[int, int]:
    with Session(get_engine(db_url)) as session:
        code = session.exec(select(ChannelCode).where(ChannelCode.slug == slug)).one()
        events = session.exec(select(ChannelEvent).where(ChannelEvent.code_id == code.id)).all()
        return code.scans_count, len(events)


def test_head_answers_like_get_but_counts_nothing(client: TestClient, db_url: str) -> None:
    slug = _code(db_url).slug
    heads = [client.head(f"/c/{slug}") for _ in range(3)]
    assert _scans(db_url, slug) == (0, 0)
    got = client.get(f"/c/{slug}")
    assert {(h.status_code, h.headers["location"]) for h in heads} == {
        (got.status_code, got.headers["location"])
    }
    assert got.status_code == 302 and _scans(db_url, slug) == (1, 1)
    assert client.head("/c/nosuchcode").status_code == client.get("/c/nosuchcode").status_code
    assert client.head("/c/nosuchcode").status_code == 404


@pytest.mark.parametrize("path", ["/c/", "/c//", "/c/abc/x", "/c/abc/", "/c/abc/x/y"])
def test_anything_else_under_c_is_the_customer_404_page(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404 and "二维码不存在" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").text == "ok"
