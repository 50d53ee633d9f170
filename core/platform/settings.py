"""The one configuration path: every setting comes from the environment, with defaults
that make `streamlit run app.py` work on a fresh machine (embedded SQLite, demo mode)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from core.platform.errors import DomainError

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / "data"
DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'app.db'}"
DEFAULT_METRICS_EARLIEST = date(2015, 1, 1)
WECOM_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin"


class WorkerMode(StrEnum):
    """Where the calls to WeCom are made from (WECOM_WORKER)."""

    PROCESS = "process"  # a child process of each server (the default)
    THREAD = "thread"  # threads inside the server process
    NONE = "none"  # not by the server: `python -m core wecom-worker` runs elsewhere


class SettingsError(DomainError):
    """An environment variable holds a value the app cannot run with (refused at start)."""


def _flag(value: str | None) -> bool | None:
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str
    demo_mode: bool
    base_url: str
    session_idle_minutes: int
    session_max_hours: int
    scheduler_enabled: bool
    customer_salt: str
    metrics_earliest: date  # imported dates before it are refused (core.platform.cells.DateWindow)
    login_attempts_per_minute: int
    wecom_corp_id: str = ""
    wecom_secret: str = ""  # the customer-contact (客户联系) secret
    wecom_token: str = ""
    wecom_aes_key: str = ""  # the 43-character EncodingAESKey
    wecom_api_base: str = WECOM_API_BASE
    wecom_worker: WorkerMode = WorkerMode.PROCESS

    @property
    def wecom_enabled(self) -> bool:
        """Live WeCom mode: all four credentials set. Otherwise contact links are typed in
        by hand and events come by import, as before."""
        return all((self.wecom_corp_id, self.wecom_secret, self.wecom_token, self.wecom_aes_key))

    @property
    def is_embedded_default(self) -> bool:
        return self.database_url == DEFAULT_DATABASE_URL


# Documented in README.md ("Configuration"); tests/core/test_settings.py keeps the two in step.
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "DATABASE_URL": "SQLAlchemy URL; default: SQLite file data/app.db",
    "DEMO_MODE": "1/0; default: on for the embedded SQLite default, off otherwise",
    "BASE_URL": "public address that channel-code QR codes point to",
    "SESSION_IDLE_MINUTES": "log out after this many idle minutes (default 120)",
    "SESSION_MAX_HOURS": "log out after this many hours in any case (default 12)",
    "SCHEDULER_ENABLED": "1/0; run the job scheduler inside the app process (default 1)",
    "CUSTOMER_ID_SALT": "secret mixed into the hash of WeCom customer ids (set it in production)",
    "METRICS_EARLIEST": "earliest date any import accepts, ISO (default 2015-01-01)",
    "LOGIN_ATTEMPTS_PER_MINUTE": "password checks allowed per client address per minute (default 20)",
    "WECOM_CORP_ID": "WeCom corp id (企业ID); with the next three it turns the live WeCom loop on",
    "WECOM_SECRET": "secret of WeCom's customer-contact (客户联系) API",
    "WECOM_TOKEN": "callback Token set in WeCom's admin console",
    "WECOM_AES_KEY": "callback EncodingAESKey (43 characters)",
    "WECOM_API_BASE": "WeCom API base URL (default https://qyapi.weixin.qq.com/cgi-bin)",
    "WECOM_WORKER": "where calls to WeCom are made: process (default), thread or none",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment; tests call `get_settings.cache_clear()` after changing it."""
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    demo = _flag(os.environ.get("DEMO_MODE"))
    return Settings(
        database_url=url,
        demo_mode=(url == DEFAULT_DATABASE_URL) if demo is None else demo,
        base_url=os.environ.get("BASE_URL", "http://localhost:8501").rstrip("/"),
        session_idle_minutes=int(os.environ.get("SESSION_IDLE_MINUTES", "120")),
        session_max_hours=int(os.environ.get("SESSION_MAX_HOURS", "12")),
        scheduler_enabled=_flag(os.environ.get("SCHEDULER_ENABLED")) is not False,
        customer_salt=os.environ.get("CUSTOMER_ID_SALT", "rights-day-studio-demo-salt"),
        metrics_earliest=_iso_date("METRICS_EARLIEST", DEFAULT_METRICS_EARLIEST),
        login_attempts_per_minute=int(os.environ.get("LOGIN_ATTEMPTS_PER_MINUTE", "20")),
        wecom_corp_id=os.environ.get("WECOM_CORP_ID", "").strip(),
        wecom_secret=os.environ.get("WECOM_SECRET", "").strip(),
        wecom_token=os.environ.get("WECOM_TOKEN", "").strip(),
        wecom_aes_key=_aes_key(),
        wecom_api_base=(os.environ.get("WECOM_API_BASE") or WECOM_API_BASE).strip().rstrip("/"),
        wecom_worker=_worker_mode(),
    )


def _worker_mode() -> WorkerMode:
    text = (os.environ.get("WECOM_WORKER") or WorkerMode.PROCESS.value).strip().lower()
    try:
        return WorkerMode(text)
    except ValueError:
        choices = "、".join(m.value for m in WorkerMode)
        raise SettingsError(
            f"环境变量 WECOM_WORKER 须为 {choices} 之一，当前值「{text}」"
        ) from None


def _aes_key() -> str:
    """The EncodingAESKey: 43 base64 characters, or the start is refused with the reason."""
    text = os.environ.get("WECOM_AES_KEY", "").strip()
    if text and not re.fullmatch(r"[A-Za-z0-9+/]{43}", text):
        raise SettingsError("环境变量 WECOM_AES_KEY 须为企业微信后台生成的 43 位 EncodingAESKey")
    return text


def _iso_date(name: str, default: date) -> date:
    """An ISO date variable; a bad value stops the start with the variable named."""
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    problem = SettingsError(
        f"环境变量 {name} 须为日期，格式如 2015-01-01，当前值「{text}」无法识别"
    )
    # fromisoformat alone would also take 20150101 or 2015-W01-1
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise problem
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise problem from None
