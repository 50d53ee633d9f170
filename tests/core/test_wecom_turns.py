"""Turns at SQLite's write lock inside a process: one writer at a time, and the callback
writer (urgent) before the outbox writers already waiting."""

import threading
import time

from core.channels.wecom.turns import WriteTurns


def _waiter(turns: WriteTurns, name: str, urgent: bool, order: list[str]) -> threading.Thread:
    def run() -> None:
        with turns.turn(urgent=urgent):
            order.append(name)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_an_urgent_writer_goes_before_ordinary_ones_already_waiting() -> None:
    turns, order = WriteTurns(), []
    with turns.turn():
        outbox = _waiter(turns, "outbox", False, order)
        time.sleep(0.05)  # the outbox writer is waiting first
        callbacks = _waiter(turns, "callbacks", True, order)
        time.sleep(0.05)
        assert order == []  # nobody writes while the turn is held
    outbox.join(5)
    callbacks.join(5)
    assert order == ["callbacks", "outbox"]


def test_one_writer_at_a_time() -> None:
    turns, inside, most = WriteTurns(), [0], [0]
    lock = threading.Lock()

    def write(urgent: bool) -> None:
        for _ in range(50):
            with turns.turn(urgent=urgent):
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.0005)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=write, args=(n % 2 == 0,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most[0] == 1
