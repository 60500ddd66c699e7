"""Test frameworks that write no JUnit, made to count: a build never reports a failing test
notebook as green.

* nutter: a task whose notebook is a nutter test notebook (a Python notebook that uses
  ``NutterFixture`` and ends with ``.exit(dbutils)``) runs :mod:`.nutter_notebook` instead,
  deployed into the build as ``_orchestrator/nutter``; it runs the test notebook, writes its
  cases as JUnit into the task's results folder and fails when one of them failed.
* testthat and pytest without JUnit, unittest: their output is read at collect time
  (:mod:`orchestrator.results.outcomes`).
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.adapters.databricks import DeployItem
from orchestrator.build import nutter_notebook
from orchestrator.errors import UsageError

__all__ = ["NUTTER_NOTEBOOK", "is_nutter", "run_nutter_through_its_notebook"]

#: where the nutter notebook is deployed, relative to the build folder
NUTTER_NOTEBOOK = "_orchestrator/nutter"


def is_nutter(item: DeployItem) -> bool:
    """A Python notebook written with nutter: it uses ``NutterFixture`` and exits with
    nutter's results."""
    if item.kind != "NOTEBOOK" or item.language != "PYTHON":
        return False
    try:
        source = item.source.read_bytes()
    except OSError:
        return False  # the deploy reports it
    return b"NutterFixture" in source and b".exit(dbutils)" in source


def run_nutter_through_its_notebook(
    job: dict[str, Any],
    items: Sequence[DeployItem],
    *,
    build_folder: str,
    results_dir: str,
) -> tuple[dict[str, Any], list[DeployItem]]:
    """``job`` with each task of a nutter notebook pointed at the nutter notebook, and the
    deploy items with that notebook added (when a task needs it)."""
    nutter = {item.target for item in items if is_nutter(item)}
    target = posixpath.join(build_folder, NUTTER_NOTEBOOK)
    if not nutter:
        return job, list(items)
    if any(item.target == target for item in items):
        raise UsageError(f"{target}: the build's own notebook; rename the repo's {NUTTER_NOTEBOOK}")
    out = copy.deepcopy(job)
    used = False
    for task in out.get("tasks") or []:
        notebook = task.get("notebook_task")
        if not isinstance(notebook, dict) or notebook.get("notebook_path") not in nutter:
            continue
        used = True
        parameters = dict(notebook.get("base_parameters") or {})
        parameters[nutter_notebook.NOTEBOOK] = notebook["notebook_path"]
        parameters[nutter_notebook.RESULTS] = f"{results_dir.rstrip('/')}/{task['task_key']}"
        parameters[nutter_notebook.TIMEOUT] = str(task.get("timeout_seconds") or 0)
        notebook["notebook_path"] = target
        notebook["base_parameters"] = parameters
    if not used:
        return job, list(items)
    source = Path(nutter_notebook.__file__)
    extra = DeployItem(source, target, "NOTEBOOK", "PYTHON", source.stat().st_size)
    return out, [*items, extra]
