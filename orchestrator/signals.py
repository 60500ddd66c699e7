"""SIGINT and SIGTERM during a build become :class:`BuildCancelled`, raised in the main thread,
so the build's ``finally`` blocks cancel the run and clean up before the process exits.

Inside a :func:`shielded` section (cancelling a run, removing the build's folders) a signal is
held back: the section finishes, then :class:`BuildCancelled` is raised as it ends, so the
process still exits 130/143. A second signal during a shielded section only says that the
cleanup is still under way. A third one, or the grace period given to
:func:`cancel_on_signals` running out after the first, ends the process at once, after printing
what may be left behind (what :func:`at_stake` describes) and how to remove it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import contextmanager, suppress
from types import FrameType
from typing import TypeVar

from orchestrator.errors import EXIT_CANCELLED_SIGINT, EXIT_CANCELLED_SIGTERM

__all__ = [
    "HARD_EXIT_AFTER",
    "BuildCancelled",
    "at_stake",
    "cancel_on_signals",
    "shielded",
    "submit_all",
]

#: the signal that ends the process without finishing the cleanup (the third one)
HARD_EXIT_AFTER = 3


class BuildCancelled(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM; a BaseException so that no ``except
    Exception`` (an SDK retry loop, say) swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return exit_code_of(self.signum)


def exit_code_of(signum: int) -> int:
    return EXIT_CANCELLED_SIGINT if signum == signal.SIGINT else EXIT_CANCELLED_SIGTERM


# all of this is touched by the main thread only (signal handlers run there), except that the
# grace timer's thread reads it for a hard exit
_depth = 0  # shielded sections entered and not yet left (main thread)
_pending: list[int] = []  # signals held back by a shielded section
_received: list[int] = []  # every signal since cancel_on_signals began
_stakes: list[Callable[[], Sequence[str]]] = []
_timer: threading.Timer | None = None


def _say(text: str) -> None:
    """Write to stderr without Python's buffered streams (safe inside a signal handler)."""
    with suppress(OSError):
        os.write(2, f"orchestrator: {text}\n".encode("ascii", "backslashreplace"))


def _left_behind() -> list[str]:
    items: list[str] = []
    for describe in list(_stakes):
        with suppress(Exception):  # a hard exit must not fail on its own report
            items.extend(describe())
    return items


def hard_exit(reason: str) -> None:
    """End the process now with the first signal's exit code, naming what may be left."""
    code = exit_code_of(_received[0]) if _received else EXIT_CANCELLED_SIGTERM
    items = _left_behind()
    _say(f"{reason}: exiting now, without finishing the cleanup")
    if items:
        _say("may be left behind: " + "; ".join(items))
        _say("`orchestrator cleanup` removes them (and cancels a run left active)")
    os._exit(code)


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    count = len(_received)
    shielded_now = _depth > 0
    if shielded_now:
        _pending.append(signum)
    if count == 1:
        _start_grace_timer()
    if count >= HARD_EXIT_AFTER:
        hard_exit(f"{signal.Signals(signum).name} received {count} times")
    if not shielded_now:
        raise BuildCancelled(signum)
    name = signal.Signals(signum).name
    if count == 1:
        _say(f"{name}: finishing the cleanup under way, then exiting")
    else:
        _say(f"{name}: still cleaning up; send it again to exit now and leave it unfinished")


_grace: float | None = None


def _start_grace_timer() -> None:
    global _timer
    if _grace is None or _timer is not None:
        return
    seconds = _grace
    _timer = threading.Timer(
        seconds, hard_exit, args=(f"cleanup still running after {seconds:g} s",)
    )
    _timer.daemon = True
    _timer.start()


@contextmanager
def cancel_on_signals(*, grace: float | None = None) -> Iterator[None]:
    """SIGINT/SIGTERM raise :class:`BuildCancelled` (held back in :func:`shielded` sections).
    ``grace``: seconds after the first signal before the process ends regardless."""
    global _grace, _timer
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending.clear()
    _received.clear()
    _grace, _timer = grace, None
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if _timer is not None:
            _timer.cancel()
        _grace, _timer = None, None


@contextmanager
def shielded() -> Iterator[None]:
    """Signals arriving inside are held back, so cancelling a run or removing a build's
    folders is not itself interrupted; the first one held back is raised when the outermost
    shielded section ends (after its body, whether it succeeded or failed)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        signum = _pending[0] if _depth == 0 and _pending else None
        if _depth == 0:
            _pending.clear()
        if signum is not None:
            raise BuildCancelled(signum)


_T = TypeVar("_T")
_R = TypeVar("_R")


def submit_all(pool: Executor, work: Callable[[_T], _R], items: Iterable[_T]) -> list[Future[_R]]:
    """``work`` for every item, submitted to ``pool`` with signals held back.

    A signal raised inside ``submit`` can interrupt the start of the pool's next worker thread,
    which then runs without the pool knowing of it: leaving the pool does not wait for it, and
    its work (a folder made, a file sent) lands after the build has cleaned up. Held back, the
    signal is raised once everything is submitted; what had not started yet is cancelled, so
    leaving the pool waits only for the work under way."""
    futures: list[Future[_R]] = []
    try:
        with shielded():
            for item in items:
                futures.append(pool.submit(work, item))
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return futures


@contextmanager
def at_stake(describe: Callable[[], Sequence[str]]) -> Iterator[None]:
    """While inside, a hard exit names what ``describe()`` returns as possibly left behind
    (a run, a folder, a storage prefix)."""
    _stakes.append(describe)
    try:
        yield
    finally:
        _stakes.remove(describe)
