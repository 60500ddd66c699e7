"""A thread-safe token bucket for client-side rate limits (requests per second).

Callers :meth:`TokenBucket.acquire` before each request. A caller that finds the bucket empty
reserves the next token (the count goes negative) and sleeps until it is due, outside the lock,
so concurrent callers are served in order at exactly ``rate`` per second after the first
``burst``. The clock is injectable: tests use a fake one whose ``sleep`` advances time.
"""

from __future__ import annotations

import threading

from orchestrator.clock import Clock, SystemClock

__all__ = ["TokenBucket"]


class TokenBucket:
    """At most ``burst`` requests at once, then ``rate`` per second; ``rate=None`` is no limit.

    ``initial`` tokens are there at the start (default: ``burst``); 0 makes even the first request
    wait ``1 / rate``, for a caller that cannot know whether another just used the budget.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        burst: float = 1.0,
        initial: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (None for no limit)")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._tokens = self.burst if initial is None else min(float(initial), self.burst)
        self._stamp = self._clock.monotonic()

    def reserve(self) -> float:
        """Take a token now or reserve the next one; returns the seconds to wait before use."""
        if self.rate is None:
            return 0.0
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> float:
        """Wait until a request may be sent; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._clock.sleep(wait)
        return wait
