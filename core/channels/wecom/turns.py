"""Turns at SQLite's single write lock inside one process. SQLite lets one writer in at a
time and makes the others poll (its busy handler sleeps 1, 2, 5 … up to 100 ms between
tries), so under a burst a callback's commit could wait a poll interval behind an outbox
claim. Waiting for a turn here instead wakes the next writer the moment the lock is
free, and the callback writer (urgent: a request waits for it) goes first. PostgreSQL
has row locks and needs none of this; other processes still meet SQLite's own lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlmodel import Session

from db.engine import is_postgres


class WriteTurns:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent = 0  # urgent writers waiting: the others let them pass

    @contextmanager
    def turn(self, *, urgent: bool = False) -> Iterator[None]:
        with self._cond:
            self._urgent += urgent
            try:
                while self._busy or (not urgent and self._urgent):
                    self._cond.wait()
            finally:
                self._urgent -= urgent
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


_turns = WriteTurns()


def write_turn(session: Session, *, urgent: bool = False) -> AbstractContextManager[None]:
    """Hold this around a write transaction on `session` (a no-op on PostgreSQL)."""
    if is_postgres(session):
        return nullcontext()
    return _turns.turn(urgent=urgent)
