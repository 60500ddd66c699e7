"""The build's collect step: JUnit XML back from storage, a synthesized failure for every task
that ended without XML, the merged file in ``test-results/`` and the executed notebooks
(runs/export HTML) in ``artifacts/``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from defusedxml import ElementTree

from orchestrator.errors import InfrastructureError
from orchestrator.files import write_atomically
from orchestrator.masking import masker
from orchestrator.results.junit import ResultsSummary, collect_results, synthesize_failure

if TYPE_CHECKING:
    from orchestrator.adapters.databricks import DatabricksWorkspace
    from orchestrator.adapters.databricks.workspace import Run
    from orchestrator.build.plan import BuildPlan
    from orchestrator.build.progress import Progress
    from orchestrator.storage.base import Storage

__all__ = ["collect_run"]

log = logging.getLogger(__name__)


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


def collect_run(
    workspace: DatabricksWorkspace,
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
    synthesized = []
    for task in run.tasks or []:
        key = task.task_key or "task"
        if key not in plan.tasks:
            continue
        folder = results / key
        if folder.is_dir() and any(folder.rglob("*.xml")):
            continue
        error, trace = workspace.task_error(task)
        error, trace = masker().mask(error), None if trace is None else masker().mask(trace)
        synthesized.append(
            synthesize_failure(key, error, trace, task.run_page_url or run.run_page_url)
        )
    config = plan.config
    name = f"TEST-{plan.context.repo_name}-{plan.context.build_id}.xml"
    summary = collect_results(
        results_dir=results, output=config.paths.results / name, synthesized=synthesized
    )
    artifacts = config.paths.artifacts / plan.context.build_id
    for task in run.tasks or []:
        if task.run_id is None or task.task_key not in plan.tasks:
            continue
        try:
            views = workspace.export_views(task.run_id)
        except InfrastructureError as exc:  # a missing export is not a failed build
            progress.info(f"{task.task_key}: no notebook export ({exc})")
            continue
        for content in views:
            html = masker().mask(content)
            write_atomically(artifacts / f"{task.task_key}.html", html.encode())
    return summary
