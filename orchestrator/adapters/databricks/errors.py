"""The one translation of databricks-sdk errors into the project's errors.

Every SDK call of the adapter runs inside :func:`sdk_errors`: an API error, the SDK's retry
deadline and a network error each become one :class:`InfrastructureError` line that names the
action. ``NotFound`` is the one error callers ask about by name (a folder already gone, a run
that no longer exists); :func:`is_not_found` tells it without importing the SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.errors import InfrastructureError

__all__ = ["is_not_found", "sdk_errors"]


@contextmanager
def sdk_errors(action: str) -> Iterator[None]:
    from databricks.sdk.errors.base import DatabricksError

    try:
        yield
    except DatabricksError as exc:
        raise InfrastructureError(f"{action}: {exc}") from exc
    except TimeoutError as exc:  # the SDK's own retry deadline
        raise InfrastructureError(f"{action}: gave up retrying: {exc}") from exc
    except OSError as exc:
        raise InfrastructureError(f"{action}: {exc}") from exc


def is_not_found(exc: BaseException) -> bool:
    """True for the SDK's NotFound, directly or as the cause of our translated error."""
    from databricks.sdk.errors import NotFound

    return isinstance(exc, NotFound) or isinstance(exc.__cause__, NotFound)
