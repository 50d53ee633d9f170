"""The outbox worker in a process of its own (`python -m core wecom-worker`), started and
watched by the server process.

Why a process: the calls to WeCom (a few hundred a second in a burst of new friends, each
an HTTP round trip, JSON and a database update) compete for the server's interpreter lock
with the callback route, whose answer WeCom waits for. In their own process they don't.

The server talks to its worker through the worker's stdin: a byte wakes it (new calls were
queued), end of file stops it (the server is stopping, or gone). The worker runs in a
session of its own, so a Ctrl+C at the terminal reaches the server, which then stops the
worker in order; a worker that dies is started again after a pause.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time

from core.platform.settings import ROOT

log = logging.getLogger(__name__)

RESTART_PAUSE_SECONDS = (1.0, 5.0, 30.0)  # after the 1st, 2nd and later unexpected exits
STOP_WAIT_SECONDS = 10.0


def worker_command() -> list[str]:
    return [sys.executable, "-m", "core", "wecom-worker", "--wake-from-stdin"]


class WorkerProcess:
    """One child worker process, restarted when it dies until `stop()`."""

    def __init__(self, command: list[str] | None = None) -> None:
        self.command = command or worker_command()
        self.process: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.restarts = 0
        self.last_exit: int | None = None
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="wecom-sidecar", daemon=True)
        self._watcher.start()

    def _spawn(self) -> None:
        process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            start_new_session=True,  # terminal signals go to the server, which stops us
        )
        assert process.stdin is not None
        # Wake-ups must never block the server's event loop: a full pipe already means
        # "there is work", so a byte that does not fit is simply dropped.
        os.set_blocking(process.stdin.fileno(), False)
        with self._lock:
            self.process = process
        log.info("WeCom outbox worker started (pid %s)", process.pid)

    def _watch(self) -> None:
        while not self.stopping.is_set():
            process = self.process
            if process is None:
                return
            code = process.wait()
            if self.stopping.is_set():
                return
            self.last_exit = code
            pause = RESTART_PAUSE_SECONDS[min(self.restarts, len(RESTART_PAUSE_SECONDS) - 1)]
            log.error("WeCom outbox worker exited with %s; restarting in %s s", code, pause)
            if self.stopping.wait(pause):
                return
            self.restarts += 1
            try:
                self._spawn()
            except OSError:
                log.exception("WeCom outbox worker could not be started")

    def wake(self) -> None:
        process = self.process
        if process is None or process.stdin is None:
            return
        # OSError: the pipe is full (a wake-up is pending already) or the worker is gone (the
        # watcher starts it again); ValueError: its stdin was closed by stop().
        with contextlib.suppress(OSError, ValueError):
            os.write(process.stdin.fileno(), b"w")

    def alive(self) -> bool:
        process = self.process
        return process is not None and process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, wait: float = STOP_WAIT_SECONDS) -> None:
        """End of file on its stdin: the worker finishes the calls in hand and exits."""
        self.stopping.set()
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        deadline = time.monotonic() + wait
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            log.warning("WeCom outbox worker did not stop in %s s: terminated", wait)
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
        if self._watcher is not None:
            self._watcher.join(1)
