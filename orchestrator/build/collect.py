"""The build's collect step: JUnit XML back from storage, every task's outcome as a test case
where its XML does not tell it (:mod:`orchestrator.results.outcomes`: a passing case for a task
that ended SUCCESS without XML, a failing one with its error, failing cell and output for a
failed task), the merged file in ``test-results/`` and the executed notebooks (runs/export
HTML) in ``artifacts/``."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from defusedxml import ElementTree

from orchestrator.errors import InfrastructureError
from orchestrator.files import write_atomically
from orchestrator.masking import masker
from orchestrator.results.junit import (
    ResultsSummary,
    SyntheticFailure,
    SyntheticPass,
    collect_results,
)
from orchestrator.results.outcomes import TaskOutcome, outcome_case, output_text

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.workspace import Run
    from orchestrator.build.plan import BuildPlan
    from orchestrator.build.progress import Progress
    from orchestrator.ports import BuildWorkspace
    from orchestrator.storage.base import Storage

__all__ = ["collect_run"]

log = logging.getLogger(__name__)
#: notebook exports fetched at once (each is one request the workspace renders)
_EXPORT_WORKERS = 8

_FAILED_CASE = re.compile(rb"<(?:failure|error)[\s/>]")


class _Task(Protocol):
    """What the export reads of a run's task (the SDK's RunTask)."""

    @property
    def task_key(self) -> str | None: ...

    @property
    def run_id(self) -> int | None: ...


def _mask_xml(path: Path) -> None:
    """A downloaded result file that shows a secret is rewritten with it masked, before it is
    parsed: in text and attribute values only, so the XML's structure is never touched."""
    secrets = masker()
    if not secrets.active:
        return
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    if secrets.mask(text) == text:
        return
    try:
        tree = ElementTree.parse(path)
    except Exception:  # noqa: BLE001 - not XML: it gets reported as such, masked
        path.write_text(secrets.mask(text), encoding="utf-8", errors="surrogateescape")
        return
    for element in tree.iter():
        element.text = secrets.mask(element.text) if element.text else element.text
        element.tail = secrets.mask(element.tail) if element.tail else element.tail
        for name, value in element.attrib.items():
            element.attrib[name] = secrets.mask(value)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _seconds(task: object) -> float | None:
    duration = getattr(task, "execution_duration", None)
    if duration:
        return float(duration) / 1000
    start, end = getattr(task, "start_time", None), getattr(task, "end_time", None)
    return (end - start) / 1000 if start and end and end >= start else None


def _outcome(
    workspace: BuildWorkspace, run: Run, task: object, folder: Path, views: list[str]
) -> TaskOutcome:
    """What the build knows of ``task``: its state, XML, and on failure its error and output."""
    xml = sorted(folder.rglob("*.xml")) if folder.is_dir() else []
    state = getattr(task, "state", None)
    result = getattr(getattr(state, "result_state", None), "value", None)
    outcome = TaskOutcome(
        task_key=getattr(task, "task_key", None) or "task",
        result=result,
        seconds=_seconds(task),
        run_url=getattr(task, "run_page_url", None) or run.run_page_url,
        has_junit=bool(xml),
        junit_failed=any(_FAILED_CASE.search(p.read_bytes()) for p in xml),
    )
    if result == "SUCCESS":
        return outcome
    error, trace = workspace.task_error(task)
    output = "\n".join(output_text(v) for v in views)
    return replace(
        outcome,
        error=masker().mask(error),
        trace=None if trace is None else masker().mask(trace),
        output=masker().mask(output),
    )


def collect_run(
    workspace: BuildWorkspace,
    run: Run,
    *,
    storage: Storage,
    plan: BuildPlan,
    scratch: Path,
    progress: Progress,
) -> ResultsSummary:
    results = scratch / "results"
    count = storage.download_prefix(f"{plan.storage_prefix}/results", results)
    for xml in results.rglob("*.xml"):
        _mask_xml(xml)  # masked at the source: the summary, report and files are built from it
    progress.info(f"{count} result files from storage")
    config = plan.config
    tasks = [t for t in run.tasks or [] if (t.task_key or "task") in plan.tasks]
    views = _export(workspace, tasks, config.paths.artifacts / plan.context.build_id, progress)
    synthesized: list[SyntheticFailure | SyntheticPass] = []
    for task in tasks:
        key = task.task_key or "task"
        outcome = _outcome(workspace, run, task, results / key, views.get(key, []))
        case = outcome_case(outcome, junit_required=config.junit.is_required(key))
        if case is not None:
            synthesized.append(case)
    name = f"TEST-{plan.context.repo_name}-{plan.context.build_id}.xml"
    return collect_results(
        results_dir=results, output=config.paths.results / name, synthesized=synthesized
    )


def _export(
    workspace: BuildWorkspace, tasks: Sequence[_Task], artifacts: Path, progress: Progress
) -> dict[str, list[str]]:
    """The executed notebooks (masked) to ``artifacts/``; by task key, for the outcomes.

    The exports are fetched in parallel (each is a rendering on the workspace's side), then
    reported and written in task order."""
    exportable = [task for task in tasks if task.run_id is not None]

    def fetch(task: _Task) -> list[str] | InfrastructureError:
        assert task.run_id is not None
        try:
            return workspace.export_views(task.run_id)
        except InfrastructureError as exc:
            return exc

    with ThreadPoolExecutor(
        max_workers=max(1, min(_EXPORT_WORKERS, len(exportable))), thread_name_prefix="export"
    ) as pool:
        fetched = list(pool.map(fetch, exportable))
    views: dict[str, list[str]] = {}
    for task, exported in zip(exportable, fetched, strict=True):
        if isinstance(exported, InfrastructureError):  # a missing export is not a failed build
            progress.info(f"{task.task_key}: no notebook export ({exported})")
            continue
        key = task.task_key or "task"
        views[key] = [masker().mask(content) for content in exported]
        for html in views[key]:
            write_atomically(artifacts / f"{key}.html", html.encode())
    return views
