"""Plain HTTP routes served beside the Streamlit app (see app.py): login, logout, health.

They call core like pages do. Login lives here because only an HTTP response can set an
HttpOnly cookie, and a cookie is what survives a reload or a second tab.
"""

from __future__ import annotations

import math
import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from core import auth
from core.clock import utcnow
from core.settings import get_settings
from db.engine import session_scope
from ui.widgets import SESSION_COOKIE

_SAFE_NEXT = re.compile(r"^[a-z0-9_-]{1,40}$")


def _next_url(value: str | None) -> str:
    # Only our own page paths: never an absolute URL (no open redirect).
    return f"/{value}" if value and _SAFE_NEXT.match(value) else "/"


async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:256]
    with session_scope() as session:
        result = auth.login(session, username, password)
    if result.token is None:
        if result.refusal is auth.LoginRefusal.LOCKED and result.locked_until:
            minutes = max(1, math.ceil((result.locked_until - utcnow()).total_seconds() / 60))
            return RedirectResponse(f"/?login=locked&minutes={minutes}", status_code=303)
        return RedirectResponse("/?login=failed", status_code=303)
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


async def logout(request: Request) -> Response:
    with session_scope() as session:
        auth.logout(session, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok")


routes = [
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["GET", "POST"]),
    Route("/healthz", health),
]
