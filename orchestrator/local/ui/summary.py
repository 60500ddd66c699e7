"""What the Jobs UI shows of a run: its build parameters, state, times and test counts.

A run document is the Jobs API's JSON (:mod:`orchestrator.local.jobs.run_documents`). The build
parameters are those ``orchestrator build`` gives every task of a build's job (``build_id``,
``branch``, ``commit``, ``pull_request``, ``target``...), or, for a job of earlier versions, its
run-now job parameters; a run started some other way simply has none.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.local.state.records import ACTIVE_LIFE_CYCLE_STATES
from orchestrator.local.state.store import Store, now_ms
from orchestrator.local.ui.shell import state_of
from orchestrator.local.ui.test_counts import TestCounts, from_exit_values, read_counts

__all__ = [
    "STATE_FILTERS",
    "CountsReader",
    "RunRow",
    "is_active",
    "job_parameters",
    "matches_state",
    "run_duration",
    "summarize",
]

_FAILED = frozenset({"FAILED", "TIMEDOUT", "INTERNAL_ERROR", "UPSTREAM_FAILED"})
_CANCELED = frozenset({"CANCELED", "UPSTREAM_CANCELED", "SKIPPED", "EXCLUDED"})
STATE_FILTERS = ("active", "succeeded", "failed", "canceled")
_OUTPUT_KEY = b'"notebook_output"'
_DECODER = json.JSONDecoder()


def is_active(doc: Mapping[str, Any]) -> bool:
    life_cycle, _ = state_of(doc)
    return life_cycle in ACTIVE_LIFE_CYCLE_STATES


def matches_state(doc: Mapping[str, Any], wanted: str) -> bool:
    """Whether the run is in one of the filter's states (``""`` matches every run)."""
    life_cycle, result = state_of(doc)
    if not wanted:
        return True
    if wanted == "active":
        return life_cycle in ACTIVE_LIFE_CYCLE_STATES
    if wanted == "succeeded":
        return result == "SUCCESS"
    if wanted == "failed":
        return result in _FAILED or life_cycle == "INTERNAL_ERROR"
    if wanted == "canceled":
        return result in _CANCELED
    return False


def job_parameters(doc: Mapping[str, Any]) -> dict[str, str]:
    """The build's values a run carries, name to value: those its notebook tasks all have in
    ``base_parameters`` (a build's job gives the build's values to every task; a value only
    some tasks have, or that differs between them, is a task's own), then its job parameters
    (run-now overrides included), which Databricks pushes down over them."""
    common: dict[str, str] | None = None
    for task in doc.get("tasks") or []:
        notebook = task.get("notebook_task") if isinstance(task, Mapping) else None
        params = notebook.get("base_parameters") if isinstance(notebook, Mapping) else None
        if not isinstance(params, Mapping) or "build_id" not in params:
            continue
        mine = {str(k): str(v) for k, v in params.items()}
        common = mine if common is None else {k: v for k, v in common.items() if mine.get(k) == v}
    values: dict[str, str] = dict(common or {})
    for item in doc.get("job_parameters") or []:
        if isinstance(item, dict) and "name" in item:
            values[str(item["name"])] = str(item.get("value", item.get("default", "")))
    overrides = (doc.get("overriding_parameters") or {}).get("job_parameters") or {}
    values.update({str(k): str(v) for k, v in overrides.items()})
    return values


def run_duration(doc: Mapping[str, Any], now: int | None = None) -> int | None:
    """Milliseconds the run (or task) took, or has taken so far; None before it started."""
    start = int(doc.get("start_time") or 0)
    if not start:
        return None
    end = int(doc.get("end_time") or 0)
    if end:
        return max(0, end - start)
    if is_active(doc):
        return max(0, (now or now_ms()) - start)
    return None


@dataclass(frozen=True)
class RunRow:
    """One row of a job page: a build."""

    run_id: int
    job_id: int | None
    build_id: str
    branch: str
    commit: str
    pull_request: str
    target: str
    start_time: int
    duration_ms: int | None
    active: bool
    counts: TestCounts | None
    doc: Mapping[str, Any]


class CountsReader:
    """Test counts of runs: reported ones read each time, notebook ones cached once final."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._root = str(store.runs_root)
        self._lock = threading.Lock()
        self._from_notebooks: dict[int, TestCounts | None] = {}

    def _exit_value(self, task: Mapping[str, Any]) -> str | None:
        """``notebook_output.result`` of a task's stored output, without parsing its logs."""
        path = f"{self._root}/{task.get('run_id')}/output.json"
        try:
            with open(path, "rb") as handle:  # noqa: PTH123 (pathlib costs here, 400 files a page)
                data = handle.read()
        except OSError:
            return None
        # A key's quotes are never escaped, while every quote inside a string value is.
        start = data.rfind(_OUTPUT_KEY)
        if start < 0:
            return None
        try:
            text = data[start + len(_OUTPUT_KEY) :].decode("utf-8").lstrip(" :")
            value, _ = _DECODER.raw_decode(text)
        except (UnicodeDecodeError, ValueError):
            return None
        result = value.get("result") if isinstance(value, dict) else None
        return result if isinstance(result, str) else None

    def counts(self, doc: Mapping[str, Any]) -> TestCounts | None:
        run_id = int(doc["run_id"])
        reported = read_counts(self.store, run_id)
        if reported is not None or is_active(doc):
            return reported
        with self._lock:
            if run_id in self._from_notebooks:
                return self._from_notebooks[run_id]
        tasks = doc.get("tasks") or []
        counts = from_exit_values([self._exit_value(t) for t in tasks])
        with self._lock:
            self._from_notebooks[run_id] = counts
        return counts


def summarize(
    doc: Mapping[str, Any],
    counts: CountsReader,
    now: int | None = None,
    params: Mapping[str, str] | None = None,
) -> RunRow:
    """The row of ``doc``; ``params``: its :func:`job_parameters`, when already known."""
    params = job_parameters(doc) if params is None else params
    job_id = doc.get("job_id")
    return RunRow(
        run_id=int(doc["run_id"]),
        job_id=int(job_id) if job_id is not None else None,
        build_id=params.get("build_id", ""),
        branch=params.get("branch", ""),
        commit=params.get("commit", ""),
        pull_request=params.get("pull_request", ""),
        target=params.get("target", ""),
        start_time=int(doc.get("start_time") or 0),
        duration_ms=run_duration(doc, now),
        active=is_active(doc),
        counts=counts.counts(doc),
        doc=doc,
    )
