"""Fakes shared by the top-level tests (the local workspace's own are in tests/local/fakes.py)."""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """An :class:`orchestrator.clock.Clock` whose time moves only when the code under test
    sleeps; every sleep is recorded. Thread-safe, for code that sleeps from several threads."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds
