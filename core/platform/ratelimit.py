"""A sliding-window limit on attempts per key (the login route keys it by client address).

It lives in the memory of each app process, not in the database: its whole point is to
refuse a flood before it costs anything, and a database-backed counter would add a write
per refused attempt, the very contention it is meant to avoid. With several processes
behind a proxy an address gets at most the limit per process it reaches (one with sticky
sessions); guessing one account's password stays bounded across processes by the lockout
counted in the database (core/platform/auth.py).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# Forget idle keys once this many are tracked, so a scan of many addresses cannot grow it.
MAX_KEYS = 50_000


class SlidingWindowLimiter:
    """At most `limit` accepted attempts per key in any `window_seconds`; refusals are free."""

    def __init__(
        self, window_seconds: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window_seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, *, limit: int) -> bool:
        """Count an attempt for `key` and say whether it may go ahead."""
        with self._lock:
            now = self._clock()
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= MAX_KEYS:
                    self._forget_idle(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= limit:
                return False  # a refused attempt is not counted: the window still ends
            hits.append(now)
            return True

    def clear(self) -> None:
        with self._lock:
            self._hits.clear()

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]
        for key in idle:
            del self._hits[key]
        if len(self._hits) >= MAX_KEYS:  # all busy: drop the oldest half rather than grow
            for key in list(self._hits)[: MAX_KEYS // 2]:
                del self._hits[key]
