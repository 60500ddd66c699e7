"""Test counts of a run, for the Jobs UI: what the build reported, else what the notebooks said.

Databricks has no place for a run's test results, so the local workspace adds one admin endpoint
(bearer token, like the rest of ``/local-admin/``) that a build calls after merging the JUnit::

    POST /local-admin/runs/test-counts
    {"run_id": 1, "tests": 19, "failures": 1, "errors": 0, "skipped": 0,
     "failed": [{"suite": "run_pytest", "name": "test_x", "message": "assert 1 == 2",
                 "task_run_id": 7, "cell": 3}]}

``failed`` (optional, at most :data:`MAX_FAILED`) names the failing tests, each with the task
run and the cell (as the notebook UI numbers it) it failed in when the build knows them: the
run page lists them, linked to that cell. The counts are kept in
``<state_dir>/runs/<run_id>/test_counts.json``. Without them, a run
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

__all__ = [
    "COUNTS_PATH",
    "MAX_FAILED",
    "FailedTest",
    "TestCounts",
    "TestCountsApi",
    "from_exit_values",
    "read_counts",
]

COUNTS_PATH = "/local-admin/runs/test-counts"
MAX_FAILED = 100
_FIELDS = ("tests", "failures", "errors", "skipped")
_FILE = "test_counts.json"


@dataclass(frozen=True)
class FailedTest:
    """A failing test a build reported, and where it failed when the build knows it."""

    suite: str
    name: str
    message: str = ""
    task_run_id: int | None = None
    cell: int | None = None


@dataclass(frozen=True)
class TestCounts:
    __test__ = False  # not a pytest test class

    tests: int
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    source: str = "build"  # "build" (reported) or "notebooks" (exit values)
    failed: tuple[FailedTest, ...] = ()

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


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _failed(items: Any) -> tuple[FailedTest, ...] | None:
    if items is None:
        return ()
    if not isinstance(items, list) or len(items) > MAX_FAILED:
        return None
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            return None
        texts = [item.get(k, "") for k in ("suite", "name", "message")]
        numbers = [item.get(k) for k in ("task_run_id", "cell")]
        if not all(isinstance(t, str) for t in texts):
            return None
        if any(n is not None and _count(n) is None for n in numbers):
            return None
        out.append(FailedTest(*texts, *numbers))
    return tuple(out)


def _parse(data: Mapping[str, Any], *, source: str) -> TestCounts | None:
    values: dict[str, int] = {}
    for name in _FIELDS:
        value = _count(data.get(name, 0))
        if value is None:
            return None
        values[name] = value
    failed = _failed(data.get("failed"))
    if "tests" not in data or failed is None:
        return None
    return TestCounts(**values, source=source, failed=failed)


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
            raise bad_request(
                "tests, failures, errors and skipped must be non-negative integers, and failed "
                f"a list of at most {MAX_FAILED} objects (suite, name, message, task_run_id, cell)"
            )
        data = {k: v for k, v in asdict(counts).items() if k != "source"}
        write_json_atomically(self.store.runs_root / str(run_id) / _FILE, data, mode=0o644)
        return Response.json({})
