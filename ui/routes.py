"""Plain HTTP routes served beside the Streamlit app (see app.py): login, logout, health,
the channel-code scans and WeCom's server callbacks.

They call core like pages do. Login lives here because only an HTTP response can set an
HttpOnly cookie, and a cookie is what survives a reload or a second tab.

The boundary rules (DESIGN.md "Trust at the boundary"):
- Login and logout change state, so they take POST only, and only from our own pages: the
  request's Origin (or, without one, its Referer) must be this server's own address or
  BASE_URL's. A request with neither is refused too: every browser in use sends Origin on a
  form POST, so only forged or scripted requests lack both.
- Every login refusal looks the same (wrong password, unknown user, locked account, too many
  attempts from one address), so the answer never tells whether a user name exists.
- Password checks run off the event loop, one at a time per process, at low CPU priority
  (core/platform/auth.py), and at most LOGIN_ATTEMPTS_PER_MINUTE per client address: a login flood
  can neither stall the event loop that serves the scans nor take both cores from them.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
import weakref
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from core.channels import events
from core.channels.wecom import callbacks
from core.channels.wecom import service as wecom
from core.channels.wecom.crypto import MAX_BODY_BYTES, CallbackRefused
from core.platform import auth
from core.platform.ratelimit import SlidingWindowLimiter
from core.platform.settings import get_settings
from db.engine import session_scope
from ui.widgets import SESSION_COOKIE

log = logging.getLogger(__name__)

_SAFE_NEXT = re.compile(r"^[a-z0-9_-]{1,40}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
OVER_LIMIT_DELAY_SECONDS = 1.0
CALLBACK_ANSWER_SECONDS = 4.0  # WeCom waits 5 s for an answer, then re-sends

# Per process, in memory: see core/platform/ratelimit.py for why not in the database.
login_limiter = SlidingWindowLimiter(window_seconds=60)
# One argon2 check at a time per process (each already uses both cores for ~0.1 s); waiting
# logins wait as coroutines, not as threads the scans need. One limiter per event loop.
_password_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _page(title: str, message_html: str, status_code: int) -> HTMLResponse:
    """The short Chinese page customers (and refused requests) see."""
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), message=message_html), status_code=status_code
    )


_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>邮惠运营工作台</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:0;background:#EEF6F0;color:#1F2A24}}
main{{max-width:420px;margin:18vh auto;padding:2rem;background:#fff;border-radius:12px;text-align:center}}
h1{{color:#007A3D;font-size:1.3rem}}</style></head><body><main><h1>{title}</h1><p>{message}</p></main></body></html>"""


# --- same-origin check for state-changing requests -----------------------------------------


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower-cased, default port dropped; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return (
        f"{scheme}://{host}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


def allowed_origins(request: Request) -> set[str]:
    """This server as the browser reached it (Host header; the scheme uvicorn saw, which
    honours X-Forwarded-Proto from FORWARDED_ALLOW_IPS only), and BASE_URL. X-Forwarded-Host
    is not read: a proxy in front keeps Host (`proxy_set_header Host $host`) or BASE_URL
    names the public address."""
    allowed = {origin_of(get_settings().base_url)}
    host = request.headers.get("host")
    if host:
        allowed.add(origin_of(f"{request.url.scheme}://{host}"))
    return {o for o in allowed if o}


def request_origin(request: Request) -> str | None:
    """Where the request came from: Origin, else the origin of Referer, else None."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin_of(origin)  # "null" (sandboxed or privacy-redirected) is None
    referer = request.headers.get("referer")
    return origin_of(referer) if referer else None


def same_origin(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Refuse a state-changing request that did not come from one of our own pages."""

    async def guarded(request: Request) -> Response:
        origin = request_origin(request)
        if origin is None or origin not in allowed_origins(request):
            log.warning(
                "refused %s %s from origin %r (referer %r)",
                request.method,
                request.url.path,
                request.headers.get("origin"),
                request.headers.get("referer"),
            )
            return _page(
                "请求来源无法确认",
                '为了账户安全，只接受从本系统页面提交的登录和退出请求。请<a href="/">返回登录页</a>重新操作。',
                403,
            )
        return await handler(request)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    return guarded


# --- login and logout --------------------------------------------------------------------


def _next_url(value: str | None) -> str:
    # Only our own page paths: never an absolute URL (no open redirect).
    return f"/{value}" if value and _SAFE_NEXT.match(value) else "/"


def client_address(request: Request) -> str:
    """The client's address. Behind a proxy uvicorn has already put X-Forwarded-For's address
    here, but only for proxies listed in FORWARDED_ALLOW_IPS (default: this machine)."""
    return request.client.host if request.client else "unknown"


def _refused() -> Response:
    # One answer for every refusal: it must not tell whether the user name exists.
    return RedirectResponse("/?login=failed", status_code=303)


_over_limit_logged: dict[str, float] = {}


def _log_over_limit(address: str) -> None:
    """One log line per address per minute, not one per refused attempt of a flood."""
    now = time.monotonic()
    if now - _over_limit_logged.get(address, -60.0) >= 60:
        if len(_over_limit_logged) > 10_000:
            _over_limit_logged.clear()
        _over_limit_logged[address] = now
        log.warning(
            "login attempts from %s over the limit: refused before the password check", address
        )


def _check_password(username: str, password: str) -> auth.LoginResult:
    with session_scope() as session:
        return auth.login(session, username, password)


def _slots() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    slots = _password_slots.get(loop)
    if slots is None:
        slots = _password_slots[loop] = anyio.CapacityLimiter(1)
    return slots


async def login(request: Request) -> Response:
    address = client_address(request)
    if not login_limiter.allow(address, limit=get_settings().login_attempts_per_minute):
        _log_over_limit(address)
        # Answer late: a client that waits for each answer (a script, a browser) is slowed
        # to one try per second per connection, and a sleeping coroutine holds no thread.
        await anyio.sleep(OVER_LIMIT_DELAY_SECONDS)
        return _refused()
    form = await request.form()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:256]
    result = await anyio.to_thread.run_sync(_check_password, username, password, limiter=_slots())
    if result.token is None:
        return _refused()
    response = RedirectResponse(_next_url(str(form.get("next", ""))), status_code=303)
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        max_age=settings.session_max_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=settings.base_url.startswith("https://"),
        path="/",
    )
    return response


def _logout(token: str | None) -> None:
    with session_scope() as session:
        auth.logout(session, token)


async def logout(request: Request) -> Response:
    await anyio.to_thread.run_sync(_logout, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- channel-code scans ----------------------------------------------------------------


def scan(request: Request) -> Response:
    """A channel code's QR points here: count the scan, pick the staff member, redirect.

    A plain function, so Starlette runs it in a worker thread: its database work never
    blocks the event loop. HEAD (link checkers, chat-app previews) answers what GET would,
    but records nothing.
    """
    slug = request.path_params["slug"][:32]
    with session_scope() as session:
        answer = events.scan(session, slug, record=request.method != "HEAD")
    if answer.status == 302:
        return RedirectResponse(answer.location, status_code=302)
    title = "二维码不存在" if answer.status == 404 else "二维码已失效"
    return _page(title, html.escape(answer.message), answer.status)


async def unknown_code(_request: Request) -> Response:
    """Anything else under /c/ (`/c/`, `/c/slug/more`): the customer's 404 page, not the app."""
    return _page("二维码不存在", "这个二维码不存在，请向网点工作人员索取最新的二维码。", 404)


# --- WeCom callbacks ---------------------------------------------------------------------


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None when it is larger than any WeCom callback."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def wecom_callback(request: Request) -> Response:
    """WeCom's server callbacks: GET verifies the URL (answers the decrypted echostr), POST
    brings an encrypted event. Anything not signed with our token, not for our corp or older
    than 5 minutes is refused with 403 and writes nothing. The event is stored in a worker
    thread (the event loop keeps serving); calls back to WeCom are queued, not made here."""
    if not get_settings().wecom_enabled:
        return PlainTextResponse("WeCom is not configured", status_code=404)
    params = {k: v[:512] for k, v in request.query_params.items()}
    try:
        if request.method == "GET":
            echo = await anyio.to_thread.run_sync(callbacks.verify_url, params)
            return PlainTextResponse(echo)
        body = await _bounded_body(request)
        if body is None:
            raise CallbackRefused("body too large")
        # Checking costs a fraction of a millisecond: done here. Storing is the callback
        # writer's (grouped with the callbacks arriving at the same moment); the answer waits
        # for the commit.
        fields, digest = callbacks.check(params, body)
        received = await asyncio.wait_for(
            asyncio.wrap_future(callbacks.writer().submit(fields, digest)),
            CALLBACK_ANSWER_SECONDS,
        )
    except CallbackRefused as exc:
        log.warning("WeCom callback refused: %s", exc)
        return PlainTextResponse("forbidden", status_code=403)
    except TimeoutError:
        # Not stored in time: WeCom re-sends a callback it got no "success" for, and a
        # late commit of this one makes the re-sent copy a replay, so it is stored once.
        log.warning("WeCom callback not stored within %ss: answered 503", CALLBACK_ANSWER_SECONDS)
        return PlainTextResponse("busy", status_code=503)
    if received.queued:
        wecom.wake()
    return PlainTextResponse("success")


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok")


routes = [
    Route("/auth/login", same_origin(login), methods=["POST"]),
    Route("/auth/logout", same_origin(logout), methods=["POST"]),
    Route("/healthz", health),
    Route("/c/{slug}", scan),  # GET, and HEAD (Starlette adds it) which counts nothing
    Route("/c/{rest:path}", unknown_code),
    Route("/wecom/callback", wecom_callback, methods=["GET", "POST"]),
]
