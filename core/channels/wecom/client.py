"""Calls to WeCom's server API (客户联系), with the access token cached until it expires.

- The token is fetched once per process and corp and kept until shortly before
  `expires_in`; an answer 40014 (invalid) or 42001 (expired) fetches a new one and the
  call is made again once.
- "System busy" (-1) and the rate limits (45009, 45033) are retried with a growing pause;
  a network error too. What still fails raises `WeComError`, which the outbox records.
- Callers never hold a database write transaction while calling (the outbox runs calls
  between its claim and its finish transactions).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

TOKEN_ERRORS = {40014, 42001}  # invalid / expired access_token
RETRY_ERRORS = {-1, 45009, 45033}  # system busy, API frequency limit, too many concurrent calls
ATTEMPTS = 3
BACKOFF_SECONDS = (0.05, 0.2, 0.5)
TIMEOUT_SECONDS = 5.0
TOKEN_MARGIN_SECONDS = 300  # refresh a little before WeCom says it expires


class WeComError(Exception):
    """A call WeCom refused or that could not be made; `code` is WeCom's errcode (or -2
    for a network failure)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message

    @property
    def retryable(self) -> bool:
        return self.code in RETRY_ERRORS or self.code == NETWORK_ERROR


NETWORK_ERROR = -2


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic()


_local = threading.local()  # one kept-alive connection per thread and host


def _connection(base: urllib.parse.SplitResult, *, fresh: bool) -> http.client.HTTPConnection:
    connections: dict[str, http.client.HTTPConnection] = _local.__dict__.setdefault("c", {})
    key = f"{base.scheme}://{base.netloc}"
    connection = connections.get(key)
    if connection is None or fresh:
        if connection is not None:
            connection.close()
        kind = http.client.HTTPSConnection if base.scheme == "https" else http.client.HTTPConnection
        connection = connections[key] = kind(base.hostname, base.port, timeout=TIMEOUT_SECONDS)
    return connection


_tokens: dict[tuple[str, str], _Token] = {}
_token_lock = threading.Lock()
# Observers of token fetches (the admin page's "last token fetch"): set by the outbox.
token_listeners: list[Callable[[bool, str], None]] = []


def _notify_token(ok: bool, detail: str) -> None:
    for listener in token_listeners:
        try:
            listener(ok, detail)
        except Exception:  # an observer must never break a call
            log.exception("token listener failed")


class WeComClient:
    def __init__(
        self, settings: Settings | None = None, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.settings = settings or get_settings()
        self.sleep = sleep

    # --- transport -------------------------------------------------------------------------

    def _http(self, method: str, path: str, query: dict[str, str], body: Any | None) -> dict:
        base = urllib.parse.urlsplit(self.settings.wecom_api_base)
        target = f"{base.path}/{path}?{urllib.parse.urlencode(query)}"
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        for fresh in (False, True):  # a kept-alive connection the server closed: once more
            connection = _connection(base, fresh=fresh)
            try:
                connection.request(method, target, body=data, headers=headers)
                response = connection.getresponse()
                text = response.read().decode()
                if response.status >= 500:
                    raise WeComError(NETWORK_ERROR, f"HTTP {response.status}")
                return json.loads(text or "{}")
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if fresh:
                    raise WeComError(NETWORK_ERROR, f"network: {exc}") from exc
            except ValueError as exc:
                raise WeComError(NETWORK_ERROR, f"not JSON: {exc}") from exc
        raise AssertionError("unreachable")

    def _with_retries(self, fn: Callable[[], dict]) -> dict:
        for attempt in range(ATTEMPTS):
            try:
                answer = fn()
            except WeComError as exc:
                if attempt + 1 == ATTEMPTS:
                    raise
                log.info("WeCom network error, retrying: %s", exc)
            else:
                code = int(answer.get("errcode", 0) or 0)
                if code not in RETRY_ERRORS or attempt + 1 == ATTEMPTS:
                    return answer
            pause = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
            self.sleep(pause * (0.5 + random.random()))  # jitter: retries do not march together
        raise AssertionError("unreachable")

    # --- the token -------------------------------------------------------------------------

    def token(self, *, refresh: bool = False) -> str:
        key = (self.settings.wecom_api_base, self.settings.wecom_corp_id)
        with _token_lock:
            cached = _tokens.get(key)
            if cached and not refresh and cached.expires_at > time.monotonic():
                return cached.value
            query = {"corpid": key[1], "corpsecret": self.settings.wecom_secret}
            try:
                answer = self._with_retries(lambda: self._http("GET", "gettoken", query, None))
            except WeComError as exc:
                _notify_token(False, str(exc))
                raise
            code = int(answer.get("errcode", 0) or 0)
            if code or not answer.get("access_token"):
                error = WeComError(code or -3, str(answer.get("errmsg", "no access_token")))
                _notify_token(False, str(error))
                raise error
            lifetime = int(answer.get("expires_in", 7200))
            _tokens[key] = _Token(
                answer["access_token"],
                time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, lifetime // 2),
            )
            _notify_token(True, f"有效期 {lifetime} 秒")
            return answer["access_token"]

    def call(
        self, path: str, body: dict | None = None, *, query: dict[str, str] | None = None
    ) -> dict:
        """POST (or GET without a body) to WeCom; the answer when errcode is 0."""
        method = "GET" if body is None else "POST"
        answer: dict = {}
        for refreshed in (False, True):
            token = self.token(refresh=refreshed)
            params = {"access_token": token, **(query or {})}
            answer = self._with_retries(lambda p=params: self._http(method, path, p, body))
            code = int(answer.get("errcode", 0) or 0)
            if code in TOKEN_ERRORS and not refreshed:
                continue
            if code:
                raise WeComError(code, str(answer.get("errmsg", "")))
            return answer
        raise WeComError(int(answer.get("errcode", -3)), str(answer.get("errmsg", "")))

    # --- the calls the loop makes -----------------------------------------------------------

    def add_contact_way(self, *, state: str, users: list[str], remark: str) -> tuple[str, str]:
        answer = self.call(
            "externalcontact/add_contact_way",
            {
                "type": 1 if len(users) == 1 else 2,
                "scene": 2,  # QR code
                "state": state,
                "user": users,
                "skip_verify": True,
                "remark": remark[:30],
            },
        )
        return str(answer["config_id"]), str(answer.get("qr_code", ""))

    def update_contact_way(self, *, config_id: str, state: str, users: list[str], remark: str):
        self.call(
            "externalcontact/update_contact_way",
            {
                "config_id": config_id,
                "state": state,
                "user": users,
                "skip_verify": True,
                "remark": remark[:30],
            },
        )

    def del_contact_way(self, *, config_id: str) -> None:
        self.call("externalcontact/del_contact_way", {"config_id": config_id})

    def customer_name(self, external_userid: str) -> str:
        answer = self.call("externalcontact/get", query={"external_userid": external_userid})
        return str((answer.get("external_contact") or {}).get("name", ""))

    def send_welcome_msg(self, *, welcome_code: str, text: str) -> None:
        self.call(
            "externalcontact/send_welcome_msg",
            {"welcome_code": welcome_code, "text": {"content": text}},
        )

    def corp_tags(self) -> dict[str, str]:
        """Every corp customer tag: name → id."""
        answer = self.call("externalcontact/get_corp_tag_list", {})
        return {
            str(tag["name"]): str(tag["id"])
            for group in answer.get("tag_group", [])
            for tag in group.get("tag", [])
        }

    def add_corp_tags(self, names: list[str], *, group: str = "渠道来源") -> dict[str, str]:
        answer = self.call(
            "externalcontact/add_corp_tag",
            {"group_name": group, "tag": [{"name": n} for n in names]},
        )
        tags = (answer.get("tag_group") or {}).get("tag", [])
        return {str(t["name"]): str(t["id"]) for t in tags}

    def mark_tag(self, *, userid: str, external_userid: str, tag_ids: list[str]) -> None:
        self.call(
            "externalcontact/mark_tag",
            {"userid": userid, "external_userid": external_userid, "add_tag": tag_ids},
        )

    def customers_of(self, userid: str) -> list[str]:
        answer = self.call("externalcontact/list", query={"userid": userid})
        return [str(x) for x in answer.get("external_userid", [])]

    def transfer_resigned(
        self, *, handover: str, takeover: str, external_userids: list[str]
    ) -> list[tuple[str, int]]:
        """离职继承 of up to 100 customers: (external id, WeCom's per-customer errcode)."""
        answer = self.call(
            "externalcontact/resigned/transfer_customer",
            {
                "handover_userid": handover,
                "takeover_userid": takeover,
                "external_userid": external_userids,
            },
        )
        return [
            (str(c.get("external_userid", "")), int(c.get("errcode", 0)))
            for c in answer.get("customer", [])
        ]


def reset_tokens() -> None:
    """Forget cached tokens (tests; a changed secret)."""
    with _token_lock:
        _tokens.clear()
