"""The project's error types and the exit code each one maps to.

Every module raises these (or subclasses) instead of bare exceptions; ``cli`` is the one place
that turns them into a one-line message and an exit code.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CANCELLED_SIGINT",
    "EXIT_CANCELLED_SIGTERM",
    "EXIT_INFRA",
    "EXIT_OK",
    "EXIT_TESTS_FAILED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "InfrastructureError",
    "OrchestratorError",
    "TimeoutExpired",
    "UsageError",
]

EXIT_OK = 0
EXIT_TESTS_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_TIMEOUT = 4
EXIT_CANCELLED_SIGINT = 130
EXIT_CANCELLED_SIGTERM = 143


class OrchestratorError(Exception):
    """Base class: a failure the CLI reports as one line with ``exit_code``.

    ``run_id`` and ``run_url`` name the Databricks run the failure concerns, where one is known
    (a build that failed after its run started, a wait that timed out): the CLI prints them and
    puts them in ``--json``.
    """

    exit_code: int = EXIT_INFRA

    def __init__(
        self, message: str = "", *, run_id: int | None = None, run_url: str | None = None
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.run_url = run_url

    def about_run(self, run_id: int | None, run_url: str | None) -> OrchestratorError:
        """Name the run this failure concerns, unless it names one already; ``self``."""
        if self.run_id is None and run_id is not None:
            self.run_id = run_id
            self.run_url = run_url
        return self


class UsageError(OrchestratorError):
    """Bad input: a flag, a config file, a template, a path. Nothing was changed remotely."""

    exit_code = EXIT_USAGE


class InfrastructureError(OrchestratorError):
    """A service (workspace, storage, vault) failed or refused in a way retries did not fix."""

    exit_code = EXIT_INFRA


class TimeoutExpired(OrchestratorError):
    """The build's own timeout ran out."""

    exit_code = EXIT_TIMEOUT
