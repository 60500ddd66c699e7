"""Test counts of a run, for the Jobs UI: what the build reported, else what the notebooks said.

Databricks has no place for a run's test results, so the local workspace adds one admin endpoint
(bearer token, like the rest of ``/local-admin/``) that a build calls after merging the JUnit::

    POST /local-admin/runs/test-counts
    {"run_id": 1, "tests": 19, "failures": 1, "errors": 0, "skipped": 0}

The counts are kept in ``<state_dir>/runs/<run_id>/test_counts.json``. Without them, a run
whose every task exited with a JSON object holding ``tests`` (``dbutils.notebook.exit`` of the
sample runner notebooks) shows the sum of those, marked as coming from the notebooks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.files import write_json_atomically
from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.state.api_error import bad_request, not_found
from orchestrator.local.state.store import Store

__all__ = ["COUNTS_PATH", "TestCounts", "TestCountsApi", "from_exit_values", "read_counts"]

COUNTS_PATH = "/local-admin/runs/test-counts"
_FIELDS = ("tests", "failures", "errors", "skipped")
_FILE = "test_counts.json"


@dataclass(frozen=True)
class TestCounts:
    __test__ = False  # not a pytest test class

    tests: int
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    source: str = "build"  # "build" (reported) or "notebooks" (exit values)

    @property
    def passed(self) -> int:
        return max(0, self.tests - self.failures - self.errors - self.skipped)

    def summary(self) -> str:
        text = f"{self.passed}/{self.tests} passed"
        if self.failures or self.errors:
            text += f", {self.failures + self.errors} failed"
        if self.skipped:
            text += f", {self.skipped} skipped"
        return text


def _parse(data: Mapping[str, Any], *, source: str) -> TestCounts | None:
    values: dict[str, int] = {}
    for name in _FIELDS:
        value = data.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None
        values[name] = value
    if "tests" not in data:
        return None
    return TestCounts(**values, source=source)


def read_counts(store: Store, run_id: int) -> TestCounts | None:
    """The counts a build reported for ``run_id``, if any."""
    path = f"{store.runs_root}/{run_id}/{_FILE}"  # a string: pathlib costs here, a row each
    try:
        with open(path, encoding="utf-8") as handle:  # noqa: PTH123
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return _parse(data, source="build") if isinstance(data, dict) else None


def from_exit_values(results: list[str | None]) -> TestCounts | None:
    """The sum of the tasks' exit values, when every task exited with counts."""
    total = TestCounts(0, source="notebooks")
    if not results:
        return None
    for result in results:
        try:
            data = json.loads(result) if result else None
        except ValueError:
            return None
        counts = _parse(data, source="notebooks") if isinstance(data, dict) else None
        if counts is None:
            return None
        total = TestCounts(
            total.tests + counts.tests,
            total.failures + counts.failures,
            total.errors + counts.errors,
            total.skipped + counts.skipped,
            source="notebooks",
        )
    return total


class TestCountsApi:
    """``POST /local-admin/runs/test-counts``: a build reports its merged JUnit counts."""

    __test__ = False

    def __init__(self, store: Store) -> None:
        self.store = store

    def register(self, router: Router) -> None:
        router.plain("POST", COUNTS_PATH, self.post)

    def post(self, req: Request) -> Response:
        run_id = req.required_int("run_id")
        if self.store.get_run(run_id) is None:
            raise not_found(f"Run {run_id} does not exist.")
        counts = _parse(req.params, source="build")
        if counts is None:
            raise bad_request("tests, failures, errors and skipped must be non-negative integers")
        data = {k: v for k, v in asdict(counts).items() if k != "source"}
        write_json_atomically(self.store.runs_root / str(run_id) / _FILE, data, mode=0o644)
        return Response.json({})
