"""Plain HTTP routes served beside the Streamlit app (see app.py): login, logout, health.

They call core like pages do. Login lives here because only an HTTP response can set an
HttpOnly cookie, and a cookie is what survives a reload or a second tab.
"""

from __future__ import annotations

import html
import math
import re

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from core import auth, channels
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


_SCAN_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>邮惠运营工作台</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:0;background:#EEF6F0;color:#1F2A24}}
main{{max-width:420px;margin:18vh auto;padding:2rem;background:#fff;border-radius:12px;text-align:center}}
h1{{color:#007A3D;font-size:1.3rem}}</style></head><body><main><h1>{title}</h1><p>{message}</p></main></body></html>"""


async def scan(request: Request) -> Response:
    """A channel code's QR points here: count the scan, pick the staff member, redirect."""
    slug = request.path_params["slug"][:32]
    with session_scope() as session:
        answer = channels.scan(session, slug)
    if answer.status == 302:
        return RedirectResponse(answer.location, status_code=302)
    title = "二维码不存在" if answer.status == 404 else "二维码已失效"
    return HTMLResponse(
        _SCAN_PAGE.format(title=title, message=html.escape(answer.message)),
        status_code=answer.status,
    )


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok")


routes = [
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["GET", "POST"]),
    Route("/healthz", health),
    Route("/c/{slug}", scan),
]
