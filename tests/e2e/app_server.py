"""The real app (`streamlit run app.py`) on a free localhost port, for the browser journeys and
for docs/make_screenshots.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class AppProcess:
    base: str  # http://127.0.0.1:PORT
    process: subprocess.Popen
    log_path: Path


@contextmanager
def running_app(
    database_url: str,
    log_path: Path,
    *,
    start_timeout: float = 60,
    env: Mapping[str, str | None] | None = None,
) -> Iterator[str]:
    """Serve the demo-mode app on `database_url` (scheduler off) and yield its base URL; the
    server's output goes to `log_path`, and is shown if it fails to start. `env` changes the
    server's environment (None removes a variable)."""
    with running_apps(database_url, [log_path], start_timeout=start_timeout, env=env) as apps:
        yield apps[0].base


@contextmanager
def running_apps(
    database_url: str,
    log_paths: list[Path],
    *,
    start_timeout: float = 60,
    env: Mapping[str, str | None] | None = None,
) -> Iterator[list[AppProcess]]:
    """Like running_app, one server per log path, all started at once on one database."""
    apps = []
    try:
        for log_path in log_paths:
            apps.append(_start(database_url, log_path, env or {}))
        deadline = time.monotonic() + start_timeout
        for app in apps:
            _wait_until_healthy(app, deadline)
        yield apps
    finally:
        for app in apps:
            app.process.terminate()
        for app in apps:
            try:
                app.process.wait(10)
            except subprocess.TimeoutExpired:
                app.process.kill()


def _start(database_url: str, log_path: Path, changes: Mapping[str, str | None]) -> AppProcess:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {
        "DATABASE_URL": database_url,
        "DEMO_MODE": "1",
        "SCHEDULER_ENABLED": "0",
        "BASE_URL": base,
        # Journeys, screenshots and page benchmarks log in dozens of times a minute, all
        # from this one address: lift the per-address login limit (a flood test restores it).
        "LOGIN_ATTEMPTS_PER_MINUTE": "100000",
        **changes,
    }
    env = {**os.environ, **settings}
    env = {k: v for k, v in env.items() if v is not None}
    command = [sys.executable, "-m", "streamlit", "run", "app.py"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    command += ["--server.headless", "true"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return AppProcess(base, process, log_path)


def _wait_until_healthy(app: AppProcess, deadline: float) -> None:
    while True:
        try:
            if urlopen(f"{app.base}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            pass
        if app.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("server did not start:\n" + app.log_path.read_text())
        time.sleep(0.3)
