"""A loopback fake of WeCom's server API for tests and the bench: gettoken and the
customer-contact calls the app makes, with WeCom's JSON shapes and error codes, and signed,
encrypted callbacks it can send to the app. Runs on a free port in a thread (uvicorn)."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.channels.wecom.crypto import WeComCrypto

CORP_ID = "wwfakecorp0001"
SECRET = "fake-contact-secret"
TOKEN = "fakeToken123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"errcode": code, "errmsg": message})


def _ok(**fields: object) -> JSONResponse:
    return JSONResponse({"errcode": 0, "errmsg": "ok", **fields})


@dataclass
class FakeWeCom:
    busy_rate: float = 0.0  # share of API calls answered -1 "system busy"
    seed: int = 7
    tokens: dict[str, float] = field(default_factory=dict)  # token → expiry (time.time())
    token_fetches: int = 0
    contact_ways: dict[str, dict] = field(default_factory=dict)
    welcomes: list[tuple[str, str]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # id → name
    tag_creations: int = 0
    marks: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # external_userid → name
    customers: dict[str, list[str]] = field(default_factory=dict)  # staff userid → customers
    transfers: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    calls: int = 0
    busy_answers: int = 0
    delays: dict[str, float] = field(default_factory=dict)  # API name → seconds per call
    welcome_times: dict[str, float] = field(default_factory=dict)  # welcome_code → time.time()
    mark_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.random = random.Random(self.seed)
        self.crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/gettoken", self.gettoken),
                Route("/_fake/stats", self.stats),
                Route("/_fake/welcome_times", self.welcome_times_json),
                Route("/cgi-bin/externalcontact/{name:path}", self.api, methods=["GET", "POST"]),
            ]
        )
        self.port = free_port()
        self.server: uvicorn.Server | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin"

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeWeCom:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        thread = threading.Thread(target=self.server.run, daemon=True)
        thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("fake WeCom did not start")
            time.sleep(0.02)
        self.thread = thread
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(5)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    # --- the API -------------------------------------------------------------------------------

    async def stats(self, _request: Request) -> JSONResponse:
        """What the fake has seen (for a bench that runs it in another process)."""
        with self.lock:
            return JSONResponse(
                {
                    "calls": self.calls,
                    "busy_answers": self.busy_answers,
                    "token_fetches": self.token_fetches,
                    "contact_ways": len(self.contact_ways),
                    "welcomes": len(self.welcomes),
                    "distinct_welcomes": len({c for c, _ in self.welcomes}),
                    "marks": len(self.marks),
                    "tag_creations": self.tag_creations,
                }
            )

    async def welcome_times_json(self, _request: Request) -> JSONResponse:
        with self.lock:
            return JSONResponse(dict(self.welcome_times))

    async def gettoken(self, request: Request) -> JSONResponse:
        q = request.query_params
        if q.get("corpid") != CORP_ID:
            return _error(40013, "invalid corpid")
        if q.get("corpsecret") != SECRET:
            return _error(40001, "invalid credential")
        token = secrets.token_hex(16)
        with self.lock:
            self.tokens[token] = time.time() + 7200
            self.token_fetches += 1
        return _ok(access_token=token, expires_in=7200)

    async def api(self, request: Request) -> JSONResponse:
        token = request.query_params.get("access_token", "")
        with self.lock:
            self.calls += 1
            expiry = self.tokens.get(token)
            busy = self.random.random() < self.busy_rate
            if busy:
                self.busy_answers += 1
        if expiry is None:
            return _error(40014, "invalid access_token")
        if expiry < time.time():
            return _error(42001, "access_token expired")
        if busy:
            return _error(-1, "system busy")
        body = json.loads(await request.body() or b"{}") if request.method == "POST" else {}
        name = request.path_params["name"]
        if self.delays.get(name):  # a slow WeCom: the call waits, other calls go on
            await asyncio.sleep(self.delays[name])
        handler = getattr(self, "_" + name.replace("/", "_"), None)
        if handler is None:
            return _error(48002, "api forbidden")
        with self.lock:
            return handler(body, request.query_params)

    def _add_contact_way(self, body: dict, _q) -> JSONResponse:
        if not body.get("user") or body.get("scene") not in (1, 2):
            return _error(40058, "invalid parameter")
        config_id = secrets.token_hex(16)
        self.contact_ways[config_id] = {
            "state": body.get("state", ""),
            "user": list(body["user"]),
            "type": body.get("type"),
            "remark": body.get("remark", ""),
        }
        return _ok(config_id=config_id, qr_code=f"https://wework.fake/qr/{config_id}")

    def _update_contact_way(self, body: dict, _q) -> JSONResponse:
        way = self.contact_ways.get(body.get("config_id", ""))
        if way is None:
            return _error(41044, "invalid config_id")
        way.update({k: body[k] for k in ("state", "user", "remark") if k in body})
        return _ok()

    def _del_contact_way(self, body: dict, _q) -> JSONResponse:
        if self.contact_ways.pop(body.get("config_id", ""), None) is None:
            return _error(41044, "invalid config_id")
        return _ok()

    def _get(self, _body: dict, q) -> JSONResponse:
        external = q.get("external_userid", "")
        return _ok(
            external_contact={"external_userid": external, "name": self.names.get(external, "")},
            follow_user=[],
        )

    def _send_welcome_msg(self, body: dict, _q) -> JSONResponse:
        code = body.get("welcome_code", "")
        if not code or code in self.welcome_times:
            return _error(41051, "welcome_code invalid or used")
        self.welcomes.append((code, body.get("text", {}).get("content", "")))
        self.welcome_times[code] = time.time()
        return _ok()

    def _get_corp_tag_list(self, _body: dict, _q) -> JSONResponse:
        tags = [{"id": i, "name": n} for i, n in self.tags.items()]
        return _ok(tag_group=[{"group_id": "g1", "group_name": "渠道来源", "tag": tags}])

    def _add_corp_tag(self, body: dict, _q) -> JSONResponse:
        names = [t["name"] for t in body.get("tag", [])]
        if any(n in self.tags.values() for n in names):
            return _error(40071, "tag name exists")
        created = []
        for name in names:
            tag_id = "et" + secrets.token_hex(6)
            self.tags[tag_id] = name
            created.append({"id": tag_id, "name": name})
        self.tag_creations += 1
        return _ok(
            tag_group={"group_id": "g1", "group_name": body.get("group_name"), "tag": created}
        )

    def _mark_tag(self, body: dict, _q) -> JSONResponse:
        ids = tuple(body.get("add_tag", []))
        if any(i not in self.tags for i in ids):
            return _error(40068, "invalid tagid")
        self.marks.append((body.get("userid", ""), body.get("external_userid", ""), ids))
        self.mark_times.append(time.time())
        return _ok()

    def _list(self, _body: dict, q) -> JSONResponse:
        return _ok(external_userid=self.customers.get(q.get("userid", ""), []))

    def _resigned_transfer_customer(self, body: dict, _q) -> JSONResponse:
        ids = tuple(body.get("external_userid", []))
        self.transfers.append((body["handover_userid"], body["takeover_userid"], ids))
        return _ok(customer=[{"external_userid": i, "errcode": 0} for i in ids])

    # --- callbacks to the app ------------------------------------------------------------------

    def callback(
        self,
        fields: dict[str, str],
        *,
        timestamp: int | None = None,
        crypto: WeComCrypto | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """(query parameters, body) of a signed, encrypted callback carrying `fields`."""
        items = "".join(
            f"<{k}>{v}</{k}>" if v.startswith("<Item>") else f"<{k}><![CDATA[{v}]]></{k}>"
            for k, v in fields.items()
        )
        message = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>{items}</xml>"
        ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
        sig, body = (crypto or self.crypto).envelope(message, timestamp=ts, nonce=nonce)
        return {"msg_signature": sig, "timestamp": ts, "nonce": nonce}, body.encode()

    def send(self, url: str, params: dict[str, str], body: bytes) -> tuple[int, str]:
        """POST a callback to the app over HTTP: (status, text)."""
        request = urllib.request.Request(
            f"{url}?{urllib.parse.urlencode(params)}", data=body, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


def add_event(
    *, state: str, userid: str, external: str, welcome_code: str = "", at: int | None = None
) -> dict[str, str]:
    """The fields of WeCom's add_external_contact event."""
    return {
        "FromUserName": "sys",
        "CreateTime": str(at or int(time.time())),
        "MsgType": "event",
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": userid,
        "ExternalUserID": external,
        "State": state,
        "WelcomeCode": welcome_code,
    }


def wecom_env(monkeypatch, fake: FakeWeCom) -> None:
    """Point the app at the fake (live WeCom mode)."""
    from core.channels.wecom.client import reset_tokens
    from core.platform.settings import get_settings

    for name, value in {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_SECRET": SECRET,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": fake.api_base,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    reset_tokens()
