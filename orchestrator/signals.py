"""SIGINT and SIGTERM during a build become :class:`BuildCancelled`, raised in the main thread,
so the build's ``finally`` blocks cancel the run and clean up before the process exits."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from orchestrator.errors import EXIT_CANCELLED_SIGINT, EXIT_CANCELLED_SIGTERM

__all__ = ["BuildCancelled", "cancel_on_signals", "shielded"]


class BuildCancelled(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM; a BaseException so that no ``except
    Exception`` (an SDK retry loop, say) swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_CANCELLED_SIGINT if self.signum == signal.SIGINT else EXIT_CANCELLED_SIGTERM


_shield = threading.Event()
_pending: list[int] = []


@contextmanager
def cancel_on_signals() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if _shield.is_set():
            _pending.append(signum)  # cleaning up: finish that first
            return
        raise BuildCancelled(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def shielded() -> Iterator[None]:
    """Signals arriving inside are held back, so cancelling a run is not itself interrupted."""
    _shield.set()
    try:
        yield
    finally:
        _shield.clear()
