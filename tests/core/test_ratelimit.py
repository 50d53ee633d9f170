"""The per-address login limit: a sliding window, refusals not counted, keys independent."""

from core.platform.ratelimit import SlidingWindowLimiter


def test_a_sliding_window_per_key() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(60, clock=lambda: now[0])
    for moment in (0, 10, 20):
        now[0] = moment
        assert limiter.allow("a", limit=3)
    assert not limiter.allow("a", limit=3)
    assert limiter.allow("b", limit=3)  # another address has its own window
    now[0] = 59.9
    assert not limiter.allow("a", limit=3)  # refusals do not push the window on
    now[0] = 60.0
    assert limiter.allow("a", limit=3)  # the attempt at 0 has left the window
    assert not limiter.allow("a", limit=3)  # those at 10 and 20 have not


def test_idle_keys_are_forgotten_when_many(monkeypatch) -> None:
    import core.platform.ratelimit

    monkeypatch.setattr(core.platform.ratelimit, "MAX_KEYS", 10)
    now = [0.0]
    limiter = SlidingWindowLimiter(60, clock=lambda: now[0])
    for i in range(10):
        limiter.allow(f"old{i}", limit=1)
    now[0] = 61.0
    assert limiter.allow("new", limit=1)
    assert len(limiter._hits) == 1  # the idle ten are gone
