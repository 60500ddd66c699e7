"""The index, the jobs list and a job's page (its runs) of the Jobs UI.

Each build has a job of its own (``build-<repo> <build_id>``, tagged ``repo`` and ``build``), so
a repo's builds are side by side in the jobs list filtered by the tag ``repo:<name>``, as in
Databricks' Jobs UI; each tag badge links to that filter.

Pure rendering: the route handlers in :mod:`orchestrator.local.ui.pages` load the documents and
pass them here with the query's filters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.local.api.routing import Response
from orchestrator.local.ui.shell import duration, esc, page, state_badge, timestamp, url
from orchestrator.local.ui.summary import STATE_FILTERS, RunRow

__all__ = ["JobFilters", "JobRow", "JobsFilter", "index_page", "job_page", "jobs_page"]

REFRESH_SECONDS = 3


@dataclass(frozen=True)
class JobRow:
    job_id: int
    name: str
    tags: Mapping[str, str]
    latest: Mapping[str, Any] | None
    runs: int
    latest_row: RunRow | None = None  # the latest run's build values and test counts


@dataclass(frozen=True)
class JobsFilter:
    """The jobs list's filters: a tag (``key`` or ``key:value``) and a part of the name."""

    tag: str = ""
    name: str = ""

    def keeps(self, job: JobRow) -> bool:
        if self.name and self.name.lower() not in job.name.lower():
            return False
        if not self.tag:
            return True
        key, sep, value = self.tag.partition(":")
        key, value = key.strip(), value.strip()
        return key in job.tags and (not sep or job.tags[key] == value)


@dataclass(frozen=True)
class JobFilters:
    state: str = ""
    branch: str = ""
    page: int = 1
    limit: int = 25

    def query(self, **changes: object) -> dict[str, object]:
        values: dict[str, object] = {"state": self.state, "branch": self.branch}
        if self.limit != JobFilters.limit:
            values["limit"] = self.limit
        values["page"] = self.page if self.page > 1 else ""
        values.update(changes)
        return values


def _tags(tags: Mapping[str, str]) -> str:
    return " ".join(
        f'<a class="badge muted" href="{esc(url("/jobs", {"tag": f"{k}:{v}" if v else k}))}">'
        f"{esc(k)}{': ' + esc(v) if v else ''}</a>"
        for k, v in sorted(tags.items())
    )


def index_page(jobs: Sequence[JobRow], recent: Sequence[RunRow]) -> Response:
    items = "".join(
        f'<li><a href="/jobs/{j.job_id}">{esc(j.name)}</a> '
        f'<span class="muted">({j.runs} run{"" if j.runs == 1 else "s"})</span></li>'
        for j in jobs
    )
    body = (
        "<p>A local, Databricks-compatible workspace: the Workspace, Jobs and Clusters REST APIs "
        "are under <code>/api/2.x/</code> (bearer token); these pages are read-only.</p>"
        f'<h2><a href="/jobs">Jobs</a></h2><ul class="jobs">{items or "<li>No jobs yet</li>"}</ul>'
        f"<h2>Recent runs</h2>{_runs_table(recent, with_job=True)}"
    )
    refresh = REFRESH_SECONDS if any(r.active for r in recent) else None
    return page("Local workspace", body, refresh_seconds=refresh)


def _jobs_filter_form(chosen: JobsFilter) -> str:
    return (
        '<form class="filters" method="get" action="/jobs">'
        f'<label>Tag<input name="tag" value="{esc(chosen.tag)}" placeholder="repo:name"></label>'
        f'<label>Name<input name="name" value="{esc(chosen.name)}"></label>'
        '<button type="submit">Filter</button><a href="/jobs">Clear</a></form>'
    )


def jobs_page(jobs: Sequence[JobRow], chosen: JobsFilter = JobsFilter()) -> Response:
    rows = []
    for job in jobs:
        latest = (
            f'{state_badge(job.latest)} <a href="/jobs/{job.job_id}/runs/{job.latest["run_id"]}">'
            f"{esc(timestamp(job.latest.get('start_time')))}</a>"
            if job.latest
            else '<span class="muted">never run</span>'
        )
        build = job.latest_row
        tests = _counts(build) if build is not None else '<span class="muted">-</span>'
        branch = esc(build.branch) if build is not None else ""
        rows.append(
            f'<tr data-job-id="{job.job_id}"><td><a href="/jobs/{job.job_id}">{esc(job.name)}</a>'
            f'</td><td class="num">{job.job_id}</td><td>{_tags(job.tags)}</td>'
            f"<td>{branch}</td><td>{latest}</td><td>{tests}</td>"
            f'<td class="num">{job.runs}</td></tr>'
        )
    empty = (
        "<p>No job matches these filters.</p>"
        if chosen.tag or chosen.name
        else "<p>No jobs yet: <code>orchestrator build</code> creates one per build.</p>"
    )
    table = (
        "<table><thead><tr><th>Name</th><th>Job ID</th><th>Tags</th><th>Branch</th>"
        "<th>Latest run</th><th>Tests</th>"
        f"<th>Runs</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else empty
    )
    refresh = REFRESH_SECONDS if any(j.latest_row and j.latest_row.active for j in jobs) else None
    return page(
        "Jobs",
        _jobs_filter_form(chosen) + table,
        crumbs=[("/", "Workspace")],
        refresh_seconds=refresh,
    )


def _pr(row: RunRow) -> str:
    return f"#{esc(row.pull_request)}" if row.pull_request else ""


def _counts(row: RunRow) -> str:
    if row.counts is None:
        return '<span class="muted">-</span>'
    cls = "FAILED" if row.counts.failures or row.counts.errors else "SUCCESS"
    origin = "reported by the build" if row.counts.source == "build" else "from the notebooks"
    return (
        f'<span class="{cls}" title="{esc(origin)}" data-tests="{row.counts.tests}">'
        f"{esc(row.counts.summary())}</span>"
    )


def _run_row(row: RunRow, *, with_job: bool) -> str:
    link = (
        f"/jobs/{row.job_id}/runs/{row.run_id}"
        if row.job_id is not None
        else (f"/runs/{row.run_id}")
    )
    job = ""
    if with_job:
        name = esc(row.doc.get("run_name", ""))
        job = (
            f'<td><a href="/jobs/{row.job_id}">{name}</a></td>'
            if row.job_id
            else f"<td>{name}</td>"
        )
    return (
        f'<tr data-run-id="{row.run_id}">{job}<td><a href="{link}">{row.run_id}</a></td>'
        f"<td>{esc(row.build_id)}</td><td>{esc(row.branch)}</td>"
        f'<td class="mono" title="{esc(row.commit)}">{esc(row.commit[:10])}</td>'
        f"<td>{_pr(row)}</td><td>{esc(row.target)}</td><td>{state_badge(row.doc)}</td>"
        f'<td class="when">{esc(timestamp(row.start_time))}</td>'
        f'<td class="num">{esc(duration(row.duration_ms))}</td><td>{_counts(row)}</td></tr>'
    )


def _runs_table(rows: Sequence[RunRow], *, with_job: bool = False) -> str:
    if not rows:
        return "<p>No runs.</p>"
    head = "<th>Job</th>" if with_job else ""
    return (
        f'<table class="runs"><thead><tr>{head}<th>Run</th><th>Build</th><th>Branch</th>'
        "<th>Commit</th><th>Pull request</th><th>Target</th><th>State</th><th>Started</th>"
        "<th>Duration</th><th>Tests</th></tr></thead><tbody>"
        + "".join(_run_row(r, with_job=with_job) for r in rows)
        + "</tbody></table>"
    )


def _filters_form(job_id: int, filters: JobFilters, branches: Sequence[str]) -> str:
    states = "".join(
        f'<option value="{s}"{" selected" if s == filters.state else ""}>{s.title()}</option>'
        for s in STATE_FILTERS
    )
    known = "".join(
        f'<option value="{esc(b)}"{" selected" if b == filters.branch else ""}>{esc(b)}</option>'
        for b in branches
    )
    return (
        f'<form class="filters" method="get" action="/jobs/{job_id}">'
        f'<label>State<select name="state"><option value="">All</option>{states}</select></label>'
        f'<label>Branch<select name="branch"><option value="">All</option>{known}</select>'
        '</label><button type="submit">Filter</button>'
        f'<a href="/jobs/{job_id}">Clear</a></form>'
    )


def _pager(job_id: int, filters: JobFilters, total: int) -> str:
    pages = max(1, -(-total // filters.limit))
    links = []
    if filters.page > 1:
        prev = url(
            f"/jobs/{job_id}", filters.query(page=filters.page - 1 if filters.page > 2 else "")
        )
        links.append(f'<a rel="prev" href="{esc(prev)}">Newer</a>')
    links.append(f'<span class="muted">Page {filters.page} of {pages} ({total} runs)</span>')
    if filters.page < pages:
        nxt = url(f"/jobs/{job_id}", filters.query(page=filters.page + 1))
        links.append(f'<a rel="next" href="{esc(nxt)}">Older</a>')
    return f'<div class="pager">{"".join(links)}</div>'


def job_page(
    job: Mapping[str, Any],
    rows: Sequence[RunRow],
    *,
    filters: JobFilters,
    total: int,
    branches: Sequence[str],
) -> Response:
    settings = job.get("settings") or {}
    job_id = int(job["job_id"])
    tags = settings.get("tags") or {}
    description = settings.get("description") or ""
    task_keys = ", ".join(str(t.get("task_key")) for t in settings.get("tasks") or [])
    body = (
        f'<dl class="facts"><dt>Job ID</dt><dd>{job_id}</dd><dt>Tags</dt><dd>{_tags(tags)}</dd>'
        f"<dt>Tasks</dt><dd>{esc(task_keys)}</dd>"
        f"<dt>Description</dt><dd>{esc(description)}</dd></dl>"
        f"<h2>Runs</h2>{_filters_form(job_id, filters, branches)}"
        f"{_runs_table(rows)}{_pager(job_id, filters, total)}"
    )
    refresh = REFRESH_SECONDS if any(r.active for r in rows) else None
    return page(
        str(settings.get("name") or f"Job {job_id}"),
        body,
        crumbs=[("/", "Workspace"), ("/jobs", "Jobs")],
        refresh_seconds=refresh,
    )
