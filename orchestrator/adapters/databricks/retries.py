"""Retries that speak: :class:`RetryReporter` is the ``Clock`` given to databricks-sdk's
``Config``, so every wait of the SDK's retry loop (connection refused, timeouts, 429, 503)
passes through it.

On the first retry, and then at most every ``interval`` seconds, it says what is being retried
(the host, the adapter's action from :func:`~orchestrator.adapters.databricks.sdk_errors.
sdk_errors`), why, for how long so far and the budget. It also enforces the budgets:

* a workspace that does not answer (connection refused, timed out) is given ``connect``
  seconds (``timeouts.connect``) from its last answer, or from the first request when it never
  answered: one deadline across every request of the build, so no request starts a fresh wait
  of its own. Past it the workspace is *gone*: the request fails with one line naming the host,
  and every later request gets one try, no retry (the wind-down's cancel and clean included);
* a workspace that answers with 429 or 503 is an answering one: each request is retried for
  ``budget`` seconds.
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
        #: no answer for ``connect`` seconds: later requests get one try (see the docstring)
        self.gone = False
        # the silence of a workspace that never answered counts from here: the SDK's own
        # host-metadata probe, at the client's creation, goes past this clock
        self._first_request: float | None = self.clock.monotonic()
        self._hurried = False
        self._last_answer: float | None = None
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
        if self._first_request is None:
            self._first_request = now
        errors.current_reporter(self, now)
        return now

    def hurry(self, budget: float = 10.0) -> None:
        """The build is winding down after a signal: a request that gets no answer is not
        retried, and one answered with 429/503 for at most ``budget`` seconds, so the signal
        takes effect within seconds whatever the workspace does."""
        self.budget = min(self.budget, budget)
        self._hurried = True

    def note_answer(self) -> None:
        """The workspace answered (a response, an API error): its silence starts again."""
        self.answered = True
        self.gone = False
        self._last_answer = self.clock.monotonic()

    def sleep(self, seconds: float) -> None:
        """The SDK's wait before retrying; called inside its ``except`` block, so the error
        being retried is the one being handled."""
        exc = sys.exc_info()[1]
        now = self.clock.monotonic()
        action, started = errors.current_action()
        reason = retry_reason(exc)
        if exc is not None and not _no_answer(exc):  # an HTTP answer (429, 503...) is an answer
            self.note_answer()
            if started is None:
                started = getattr(self._starts, "first", None) or now
                self._starts.first = started
            elapsed = now - started
            if elapsed + seconds > self.budget:
                raise RetryBudgetExceeded(
                    f"workspace {self.host} still failing after {elapsed:.0f} s of retries "
                    f"(retry budget: {self.budget:.0f} s) while {action or 'calling it'}: {reason}"
                ) from exc
            self._report(action, reason, elapsed, self.budget, "retry budget", now)
            self.clock.sleep(seconds)
            return
        since = self._last_answer if self._last_answer is not None else self._first_request
        silence = now - (since if since is not None else now)
        if self.gone or self._hurried or silence >= self.connect:
            self.gone = True
            raise RetryBudgetExceeded(
                f"workspace {self.host} did not answer for {silence:.0f} s (timeouts.connect: "
                f"{self.connect:.0f} s) while {action or 'calling it'}: {reason}"
            ) from exc
        self._report(action, reason, silence, self.connect, "timeouts.connect", now)
        self.clock.sleep(min(seconds, self.connect - silence))  # one last try at the deadline

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
