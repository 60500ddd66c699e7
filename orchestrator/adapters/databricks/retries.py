"""Retries that speak: :class:`RetryReporter` is the ``Clock`` given to databricks-sdk's
``Config``, so every wait of the SDK's retry loop (connection refused, timeouts, 429, 503)
passes through it.

On the first retry, and then at most every ``interval`` seconds, it says what is being retried
(the host, the adapter's action from :func:`~orchestrator.adapters.databricks.sdk_errors.
sdk_errors`), why, for how long so far and the budget. It also enforces the budgets: a host that
has never answered is retried for ``connect`` seconds (``timeouts.connect``), one that has
answered for ``budget`` seconds; then the request fails with one line naming the host.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

from orchestrator.adapters.databricks import sdk_errors as errors
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import InfrastructureError

__all__ = ["DEFAULT_BUDGET", "RetryBudgetExceeded", "RetryReporter", "retry_reason"]

log = logging.getLogger(__name__)

#: how long a request to a host that has answered before is retried (the SDK's own default)
DEFAULT_BUDGET = 300.0


class RetryBudgetExceeded(InfrastructureError):
    """A request was retried for its whole budget."""


def retry_reason(exc: BaseException | None) -> str:
    """Why the SDK retries: ``cannot connect``, ``timed out`` or the service's answer."""
    import requests

    if exc is None:
        return "retrying"
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    first = (str(exc).strip().splitlines() or [""])[0][:120]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _no_answer(exc: BaseException | None) -> bool:
    import requests

    return isinstance(exc, requests.ConnectionError | requests.Timeout)


class RetryReporter:
    """A databricks-sdk ``Clock`` over the orchestrator's :class:`Clock` that reports and
    bounds the SDK's retries (see the module docstring)."""

    def __init__(
        self,
        host: str,
        *,
        clock: Clock | None = None,
        connect: float = 60.0,
        budget: float = DEFAULT_BUDGET,
        interval: float = 10.0,
    ) -> None:
        self.host = host
        self.clock = clock or SystemClock()
        self.connect = connect
        self.budget = max(budget, connect)
        self.interval = interval
        self.answered = False
        self._say: Callable[[str], None] = log.warning
        self._lock = threading.Lock()
        self._last_said: float | None = None
        self._starts = threading.local()

    def listen(self, say: Callable[[str], None]) -> None:
        """Where the retry lines go (the build's progress; a warning log line until then)."""
        self._say = say

    # -- databricks.sdk.clock.Clock ------------------------------------------------------------

    def time(self) -> float:
        now = self.clock.monotonic()
        errors.current_reporter(self, now)
        return now

    def sleep(self, seconds: float) -> None:
        """The SDK's wait before retrying; called inside its ``except`` block, so the error
        being retried is the one being handled."""
        exc = sys.exc_info()[1]
        if exc is not None and not _no_answer(exc):
            self.answered = True  # an HTTP answer (429, 503...) is an answer
        now = self.clock.monotonic()
        action, started = errors.current_action()
        if started is None:
            started = getattr(self._starts, "first", None) or now
            self._starts.first = started
        elapsed = now - started
        budget, setting = (
            (self.budget, "retry budget") if self.answered else (self.connect, "timeouts.connect")
        )
        reason = retry_reason(exc)
        if elapsed + seconds > budget:
            what = "still failing" if self.answered else "did not answer"
            raise RetryBudgetExceeded(
                f"workspace {self.host} {what} after {elapsed:.0f} s of retries ({setting}: "
                f"{budget:.0f} s) while {action or 'calling it'}: {reason}"
            ) from exc
        self._report(action, reason, elapsed, budget, setting, now)
        self.clock.sleep(seconds)

    def _report(
        self,
        action: str | None,
        reason: str,
        elapsed: float,
        budget: float,
        setting: str,
        now: float,
    ) -> None:
        with self._lock:
            if self._last_said is not None and now - self._last_said < self.interval:
                return
            self._last_said = now
        self._say(
            f"retrying {action or 'a request'} on {self.host} ({reason}): {elapsed:.0f} s so far,"
            f" gives up after {budget:.0f} s ({setting})"
        )
