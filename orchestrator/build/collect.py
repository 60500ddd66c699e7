"""The build's collect step: JUnit XML back from storage, every task's outcome as a test case
where its XML does not tell it (:mod:`orchestrator.results.outcomes`: a passing case for a task
that ended SUCCESS without XML, a failing one naming the user's notebook, cell and error for a
failed task, a skipped one for a task an upstream failure kept from running), the merged file in
``test-results/`` and the executed notebooks (``runs/export`` pages) in ``artifacts/``.

Everything here is read through APIs a real workspace answers: ``runs/get`` for the task runs,
``runs/export`` (the notebook model) and ``runs/get-output`` (error and trace) for each failed
one, followed into the runs its notebook started (:mod:`orchestrator.build.failures`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from defusedxml import ElementTree

from orchestrator.adapters.databricks import TaskOutput, TaskView, task_platform_failure
from orchestrator.build.failures import trace_failure
from orchestrator.build.local_outputs import results_file
from orchestrator.build.run_magic import through_run_magic
from orchestrator.errors import InfrastructureError
from orchestrator.files import write_atomically
from orchestrator.masking import masker
from orchestrator.results.junit import (
    ResultsSummary,
    SyntheticFailure,
    SyntheticPass,
    SyntheticSkip,
    collect_results,
)
from orchestrator.results.outcomes import FailurePoint, TaskOutcome, outcome_cases
from orchestrator.results.run_export import read_notebook

if TYPE_CHECKING:
    from orchestrator.adapters.databricks import RunView
    from orchestrator.build.plan import BuildPlan
    from orchestrator.build.progress import Progress
    from orchestrator.ports import BuildWorkspace
    from orchestrator.storage.base import Storage

__all__ = ["Collected", "collect_run", "failures_for_the_ui"]

log = logging.getLogger(__name__)
#: notebook exports fetched at once (each is one request the workspace renders)
_EXPORT_WORKERS = 8
#: a task's result when it did not run because of its upstream tasks or its run_if condition
_NOT_RUN = frozenset({"UPSTREAM_FAILED", "UPSTREAM_CANCELED", "EXCLUDED", "SKIPPED"})

_FAILED_CASE = re.compile(rb"<(?:failure|error)[\s/>]")
_RUN_ID = re.compile(r"^Run: \S*/runs?/(\d+)\S*$", re.MULTILINE)
#: failing tests the local Jobs UI is told of (its limit)
_UI_FAILURES = 100


@dataclass(frozen=True)
class Collected:
    """What the collect step found: the merged results, and whether the platform (not the
    notebooks) ended a task or a run one of them started."""

    summary: ResultsSummary
    platform: str | None = None
    #: where each failed task failed (its user's notebook and cell), by task key
    failures: Mapping[str, FailurePoint] = field(default_factory=dict)


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


def _upstream(task: TaskView, tasks: Sequence[TaskView]) -> str:
    """Why ``task`` did not run: "upstream task a failed", its run_if condition, or what the
    run says."""
    if task.end.result == "EXCLUDED":
        return "excluded by its run_if condition"
    ended = {t.task_key: t.end.result for t in tasks}
    failed = [k for k in task.depends_on if ended.get(k) not in ("SUCCESS", "EXCLUDED", None)]
    if failed:
        cancelled = all(ended[k] in ("CANCELED", "UPSTREAM_CANCELED") for k in failed)
        noun = "task" if len(failed) == 1 else "tasks"
        verb = "was cancelled" if cancelled else "failed"
        verb = verb.replace("was", "were") if len(failed) > 1 else verb
        return f"upstream {noun} {', '.join(failed)} {verb}"
    return task.end.message or f"task ended {task.end.result}"


def _printed(views: list[str]) -> str:
    """What a notebook printed, from its export (masked already)."""
    for page in views:
        notebook = read_notebook(page)
        if notebook is not None:
            return notebook.output()
    return ""


class _Outcomes:
    """The outcome of every task of one run."""

    def __init__(self, workspace: BuildWorkspace, plan: BuildPlan, results: Path) -> None:
        self.workspace = workspace
        self.plan = plan
        self.results = results
        self.platform: str | None = None
        self.failures: dict[str, FailurePoint] = {}

    def outcome(self, task: TaskView, tasks: Sequence[TaskView], views: list[str]) -> TaskOutcome:
        folder = self.results / task.task_key
        xml = sorted(folder.rglob("*.xml")) if folder.is_dir() else []
        outcome = TaskOutcome(
            task_key=task.task_key,
            result=task.end.result,
            seconds=task.seconds,
            run_url=task.run_page_url,
            has_junit=bool(xml),
            junit_failed=any(_FAILED_CASE.search(p.read_bytes()) for p in xml),
        )
        if outcome.succeeded:
            # what it printed: a framework that wrote no JUnit may have counted its tests
            # (``views`` of a task that succeeded hold only that: see ``_export``)
            return outcome if xml else replace(outcome, output="".join(views))
        if task.end.result in _NOT_RUN:
            return replace(outcome, seconds=None, upstream=_upstream(task, tasks))
        platform = task_platform_failure(task)
        if platform is not None:
            self.platform = self.platform or f"task {task.task_key}: {platform}"
        output = self._output(task)
        traced = trace_failure(
            self.workspace,
            notebook_path=task.notebook_path,
            run_url=task.run_page_url,
            views=views,
            output=output,
            build_folder=self.plan.build_folder,
        )
        if traced.platform is not None:
            self.platform = self.platform or f"task {task.task_key}: {traced.platform}"
        if traced.failure is not None:
            point = through_run_magic(
                traced.failure, self.plan.deploy_items, build_folder=self.plan.build_folder
            )
            traced = replace(traced, failure=point)
            self.failures[task.task_key] = point
        error = task.end.message or output.error
        if platform is not None:
            error = f"the platform failed, not the notebook ({platform}); a retry may pass"
        return replace(
            outcome, error=masker().mask(error), failure=traced.failure, output=traced.output
        )

    def _output(self, task: TaskView) -> TaskOutput:
        if task.run_id is None:
            return TaskOutput()
        try:
            return self.workspace.task_output(task.run_id)
        except InfrastructureError as exc:  # the failure is still reported, with less detail
            log.debug("no output of task run %s: %s", task.run_id, exc)
            return TaskOutput()


def collect_run(
    workspace: BuildWorkspace,
    run: RunView,
    *,
    storage: Storage,
    plan: BuildPlan,
    scratch: Path,
    progress: Progress,
) -> Collected:
    results = scratch / "results"
    count = storage.download_prefix(f"{plan.storage_prefix}/results", results)
    for xml in results.rglob("*.xml"):
        _mask_xml(xml)  # masked at the source: the summary, report and files are built from it
    progress.info(f"{count} result files from storage")
    config = plan.config
    tasks = [t for t in run.tasks if t.task_key in plan.tasks]
    views = _export(workspace, tasks, config.paths.artifacts / plan.context.build_id, progress)
    outcomes = _Outcomes(workspace, plan, results)
    synthesized: list[SyntheticFailure | SyntheticPass | SyntheticSkip] = []
    for task in tasks:
        outcome = outcomes.outcome(task, run.tasks, views.get(task.task_key, []))
        required = config.junit.is_required(task.task_key)
        synthesized += outcome_cases(outcome, junit_required=required)
    summary = collect_results(
        results_dir=results, output=results_file(plan), synthesized=synthesized
    )
    return Collected(summary, outcomes.platform, outcomes.failures)


def failures_for_the_ui(collected: Collected, run: RunView) -> list[dict[str, object]]:
    """The failing tests, for the local Jobs UI's run page: suite, name, the message's first
    line, and the run and cell they failed in where the build knows them: the cell its task
    failed in (for a test of that task's own JUnit too), in the run that executed that
    notebook (the task's, or one its notebook started)."""
    task_runs = {t.task_key: t.run_id for t in run.tasks}
    out: list[dict[str, object]] = []
    for case in collected.summary.failed[:_UI_FAILURES]:
        message = (case.message.strip().splitlines() or [""])[0]
        point = collected.failures.get(case.suite)
        where = _RUN_ID.search(f"Run: {point.run_url}") if point and point.run_url else None
        out.append(
            {
                "suite": case.suite,
                "name": case.name,
                "message": message,
                "task_run_id": int(where.group(1)) if where else task_runs.get(case.suite),
                "cell": point.cell if point is not None else None,
            }
        )
    return out


def _export(
    workspace: BuildWorkspace, tasks: Sequence[TaskView], artifacts: Path, progress: Progress
) -> dict[str, list[str]]:
    """The executed notebooks (masked) to ``artifacts/``; by task key, what the outcomes need.

    The exports are fetched in parallel (each is a rendering on the workspace's side); each is
    masked and written as it arrives, and only what the outcomes read of it is kept: the pages
    of a task that did not succeed (its failure is traced through them), and of one that did,
    only what it printed. So a build of hundreds of notebooks never holds every page at once.
    A task that did not run has nothing to export; missing exports are reported in task order."""
    exportable = [t for t in tasks if t.run_id is not None and t.end.result not in _NOT_RUN]

    def fetch(task: TaskView) -> list[str] | InfrastructureError:
        assert task.run_id is not None
        try:
            pages = [masker().mask(content) for content in workspace.export_views(task.run_id)]
        except InfrastructureError as exc:
            return exc
        for html in pages:
            write_atomically(artifacts / f"{task.task_key}.html", html.encode())
        return pages if task.end.result != "SUCCESS" else [_printed(pages)]

    with ThreadPoolExecutor(
        max_workers=max(1, min(_EXPORT_WORKERS, len(exportable))), thread_name_prefix="export"
    ) as pool:
        fetched = list(pool.map(fetch, exportable))
    views: dict[str, list[str]] = {}
    for task, exported in zip(exportable, fetched, strict=True):
        if isinstance(exported, InfrastructureError):  # a missing export is not a failed build
            progress.info(f"{task.task_key}: no notebook export ({exported})")
            continue
        views[task.task_key] = exported
    return views
