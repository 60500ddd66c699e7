"""The one translation of databricks-sdk errors into the project's errors.

Every SDK call of the adapter runs inside :func:`sdk_errors`: an API error, the SDK's retry
deadline and a network error each become one :class:`InfrastructureError` line that names the
action. ``NotFound`` is the one error callers ask about by name (a folder already gone, a run
that no longer exists); :func:`is_not_found` tells it without importing the SDK.

:func:`sdk_errors` also tells the retry reporter (:mod:`.retries`) what the current thread is
doing, since when, and whether the workspace answered it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from orchestrator.errors import InfrastructureError

__all__ = ["current_action", "current_reporter", "is_not_found", "sdk_errors"]


class _Answered(Protocol):
    def note_answer(self) -> None: ...


_local = threading.local()


def current_action() -> tuple[str | None, float | None]:
    """The action of the innermost :func:`sdk_errors` in this thread and when its first
    request started (clock time), if any."""
    return getattr(_local, "action", None), getattr(_local, "started", None)


def current_reporter(reporter: _Answered, now: float) -> None:
    """Called by the retry reporter on each request of the SDK: remembers which workspace the
    current action talks to, and the time of its first request."""
    _local.reporter = reporter
    if getattr(_local, "started", None) is None:
        _local.started = now


def _answered() -> None:
    reporter = getattr(_local, "reporter", None)
    if reporter is not None:
        reporter.note_answer()


@contextmanager
def sdk_errors(action: str) -> Iterator[None]:
    from databricks.sdk.errors.base import DatabricksError

    saved = (current_action(), getattr(_local, "reporter", None))
    _local.action, _local.started, _local.reporter = action, None, None
    try:
        yield
        _answered()
    except DatabricksError as exc:
        _answered()  # an API error is an answer
        raise InfrastructureError(f"{action}: {exc}") from exc
    except TimeoutError as exc:  # the SDK's own retry deadline
        raise InfrastructureError(f"{action}: gave up retrying: {exc}") from exc
    except OSError as exc:
        raise InfrastructureError(f"{action}: {exc}") from exc
    finally:
        (_local.action, _local.started), _local.reporter = saved


def is_not_found(exc: BaseException) -> bool:
    """True for the SDK's NotFound, directly or as the cause of our translated error."""
    from databricks.sdk.errors import NotFound

    return isinstance(exc, NotFound) or isinstance(exc.__cause__, NotFound)
