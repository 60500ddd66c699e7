"""A run's page in the Jobs UI: its facts and parameters, each task, and the run's timeline.

While the run is active the page carries a ``<meta http-equiv="refresh">`` and so reloads
itself; the first render after the run ends has none, so the reloading stops there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.local.api.routing import Response
from orchestrator.local.state.store import now_ms
from orchestrator.local.ui.git_source_view import git_source_facts
from orchestrator.local.ui.mlflow_runs_view import mlflow_runs_section
from orchestrator.local.ui.shell import duration, esc, page, state_badge, state_of, timestamp
from orchestrator.local.ui.summary import RunRow, is_active, job_parameters, run_duration

__all__ = ["REFRESH_SECONDS", "run_page", "task_link", "task_page", "timeline"]

REFRESH_SECONDS = 2
_BAR_HEIGHT = 22
_LABEL_WIDTH = 180
_WIDTH = 900


def task_link(doc: Mapping[str, Any], task: Mapping[str, Any]) -> str:
    job_id = doc.get("job_id")
    prefix = f"/jobs/{job_id}" if job_id is not None else ""
    return f"{prefix}/runs/{task['run_id']}"


def _error(task: Mapping[str, Any], *, short: bool = False) -> str:
    """The task's error; ``short``: its first 160 characters, the rest folded away."""
    _, result = state_of(task)
    message = str((task.get("state") or {}).get("state_message") or "")
    if not message or result == "SUCCESS":
        return ""
    if short and len(message) > 160:
        return (
            f'<details class="error"><summary>{esc(message[:160])}...</summary>'
            f"{esc(message)}</details>"
        )
    return f'<div class="error">{esc(message)}</div>'


def _task_rows(doc: Mapping[str, Any], now: int) -> str:
    rows = []
    for task in doc.get("tasks") or []:
        depends = ", ".join(str(d.get("task_key")) for d in task.get("depends_on") or [])
        notebook = str((task.get("notebook_task") or {}).get("notebook_path") or "")
        link = task_link(doc, task)
        rows.append(
            f'<tr data-task="{esc(task.get("task_key"))}">'
            f'<td><a href="{esc(link)}">{esc(task.get("task_key"))}</a>'
            f'<div class="muted mono">{esc(notebook)}</div></td>'
            f"<td>{state_badge(task)}</td>"
            f'<td class="when">{esc(timestamp(task.get("start_time")))}</td>'
            f'<td class="num">{esc(duration(run_duration(task, now)))}</td>'
            f"<td>{esc(depends)}</td><td>{_error(task, short=True)}</td>"
            f'<td><a href="{esc(link)}">Notebook</a></td></tr>'
        )
    return "".join(rows)


def timeline(doc: Mapping[str, Any], now: int) -> str:
    """An SVG bar per task from its start to its end (or now), on the run's time scale."""
    tasks = [t for t in doc.get("tasks") or [] if t.get("start_time")]
    start = int(doc.get("start_time") or 0)
    if not tasks or not start:
        return '<p class="muted">No task has started yet.</p>'
    ends = [int(t.get("end_time") or 0) or now for t in tasks]
    span = max(1, max(ends) - start)
    scale = (_WIDTH - _LABEL_WIDTH - 10) / span
    bars = []
    for index, (task, end) in enumerate(zip(tasks, ends, strict=True)):
        y = index * (_BAR_HEIGHT + 6)
        x = _LABEL_WIDTH + (int(task["start_time"]) - start) * scale
        width = max(2.0, (end - int(task["start_time"])) * scale)
        life_cycle, result = state_of(task)
        tip = f"{task.get('task_key')}: {duration(end - int(task['start_time']))}"
        bars.append(
            f'<text x="0" y="{y + 15}">{esc(task.get("task_key"))}</text>'
            f'<rect class="track" x="{_LABEL_WIDTH}" y="{y}" width="{_WIDTH - _LABEL_WIDTH - 10}" '
            f'height="{_BAR_HEIGHT}"/><rect class="{esc(result or life_cycle)}" x="{x:.1f}" '
            f'y="{y}" width="{width:.1f}" height="{_BAR_HEIGHT}"><title>{esc(tip)}</title></rect>'
        )
    height = len(tasks) * (_BAR_HEIGHT + 6) + 18
    axis = (
        f'<text x="{_LABEL_WIDTH}" y="{height - 2}">0s</text>'
        f'<text x="{_WIDTH - 60}" y="{height - 2}">{esc(duration(span))}</text>'
    )
    return (
        f'<svg class="timeline" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="Timeline of the tasks">{"".join(bars)}{axis}</svg>'
    )


def _parameters(doc: Mapping[str, Any]) -> str:
    params = job_parameters(doc)
    if not params:
        return '<p class="muted">No job parameters.</p>'
    rows = "".join(
        f'<tr><td class="mono">{esc(k)}</td><td class="mono">{esc(v)}</td></tr>'
        for k, v in params.items()
    )
    return f'<table class="params"><tbody>{rows}</tbody></table>'


def _facts(row: RunRow, doc: Mapping[str, Any], job_name: str) -> str:
    job_id = doc.get("job_id")
    job = f'<a href="/jobs/{job_id}">{esc(job_name)}</a>' if job_id is not None else "one-time run"
    counts = esc(row.counts.summary()) if row.counts else '<span class="muted">-</span>'
    live = (
        '<dd class="live">Live: this page refreshes until the run ends</dd>' if row.active else ""
    )
    pr = f"#{esc(row.pull_request)}" if row.pull_request else ""
    return (
        f'<dl class="facts"><dt>Job</dt><dd>{job}</dd><dt>Run ID</dt><dd>{row.run_id}</dd>'
        f'<dt>State</dt><dd id="run-state">{state_badge(doc)}</dd>{live and "<dt></dt>" + live}'
        f"<dt>Build</dt><dd>{esc(row.build_id)}</dd><dt>Branch</dt><dd>{esc(row.branch)}</dd>"
        f'<dt>Commit</dt><dd class="mono">{esc(row.commit)}</dd><dt>Pull request</dt><dd>{pr}</dd>'
        f"<dt>Target</dt><dd>{esc(row.target)}</dd>{git_source_facts(doc)}"
        f"<dt>Started</dt><dd>{esc(timestamp(doc.get('start_time')))}</dd>"
        f"<dt>Ended</dt><dd>{esc(timestamp(doc.get('end_time')))}</dd>"
        f"<dt>Duration</dt><dd>{esc(duration(row.duration_ms))}</dd>"
        f'<dt>Tests</dt><dd id="test-counts">{counts}</dd></dl>'
    )


def _failing_tests(row: RunRow, doc: Mapping[str, Any]) -> str:
    """The failing tests the build reported, each linked to the task's notebook at the cell it
    failed in (when the build knew them)."""
    failed = row.counts.failed if row.counts is not None else ()
    if not failed:
        return ""
    prefix = f"/jobs/{doc['job_id']}" if doc.get("job_id") is not None else ""
    rows = []
    for test in failed:
        name = esc(test.name)
        if test.task_run_id is not None:
            anchor = f"#cell-{test.cell}" if test.cell is not None else ""
            where = f" (cell {test.cell})" if test.cell is not None else ""
            name = f'<a href="{prefix}/runs/{test.task_run_id}{anchor}">{name}{where}</a>'
        first = (test.message.strip().splitlines() or [""])[0]
        rows.append(f"<tr><td>{esc(test.suite)}</td><td>{name}</td><td>{esc(first)}</td></tr>")
    return (
        '<h2>Failing tests</h2><table id="failing-tests"><thead><tr><th>Suite</th><th>Test</th>'
        f"<th>Message</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def run_page(row: RunRow, *, job_name: str, crumbs: Sequence[tuple[str, str]]) -> Response:
    doc = row.doc
    now = now_ms()
    message = str((doc.get("state") or {}).get("state_message") or "")
    _, result = state_of(doc)
    body = (
        _facts(row, doc, job_name)
        + (f'<div class="error">{esc(message)}</div>' if message and result != "SUCCESS" else "")
        + '<h2>Tasks</h2><table class="tasks"><thead><tr><th>Task</th><th>State</th>'
        "<th>Started</th><th>Duration</th><th>Depends on</th><th>Error</th><th></th></tr>"
        f"</thead><tbody>{_task_rows(doc, now)}</tbody></table>"
        f"{_failing_tests(row, doc)}"
        f"<h2>Timeline</h2>{timeline(doc, now)}<h2>Parameters</h2>{_parameters(doc)}"
    )
    return page(
        f"Run {row.run_id} of {job_name}",
        body,
        crumbs=crumbs,
        refresh_seconds=REFRESH_SECONDS if row.active else None,
    )


def task_page(
    doc: Mapping[str, Any],
    task: Mapping[str, Any],
    *,
    job_name: str,
    notebook: str | None,
    failed_cells: Sequence[str],
    crumbs: Sequence[tuple[str, str]],
    mlflow_runs: Sequence[Mapping[str, Any]] = (),
) -> Response:
    """A task run: its state and error, the MLflow runs it logged, then its executed notebook
    (cells and outputs)."""
    active = is_active(task)
    path = str((task.get("notebook_task") or {}).get("notebook_path") or "")
    failed = (
        f'<dt>Failed cells</dt><dd id="failed-cells">{esc(", ".join(failed_cells))}</dd>'
        if failed_cells
        else ""
    )
    facts = (
        f'<dl class="facts"><dt>Task</dt><dd>{esc(task.get("task_key"))}</dd>'
        f'<dt>Notebook</dt><dd class="mono">{esc(path)}</dd>'
        f'<dt>State</dt><dd id="task-state">{state_badge(task)}</dd>'
        f"<dt>Started</dt><dd>{esc(timestamp(task.get('start_time')))}</dd>"
        f"<dt>Duration</dt><dd>{esc(duration(run_duration(task)))}</dd>{failed}</dl>"
        f"{_error(task)}"
    )
    if notebook is None:
        notebook = (
            '<p class="live">The notebook is running; this page refreshes until it ends.</p>'
            if active
            else '<p class="muted">This task has no executed notebook.</p>'
        )
    return page(
        f"{task.get('task_key')} - run {doc['run_id']} of {job_name}",
        f"{facts}{mlflow_runs_section(mlflow_runs)}"
        f'<h2>Notebook</h2><div class="notebook">{notebook}</div>',
        crumbs=crumbs,
        refresh_seconds=REFRESH_SECONDS if active else None,
    )
