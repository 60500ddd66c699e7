"""Read-only HTML pages of the local workspace: a run (``run_page_url``) and its notebooks.

Pages are served without a token so a browser can open the URL a build prints; they only show
run metadata and executed notebooks, and the server listens on loopback only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from orchestrator.local.errors import ApiError
from orchestrator.local.http import Request, Response, Router
from orchestrator.local.jobs_api import JobsApi

__all__ = ["Pages"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.SUCCESS{color:#0a7a2f}.FAILED,.TIMEDOUT,.INTERNAL_ERROR,.UPSTREAM_FAILED{color:#b00020}
.CANCELED{color:#8a6d00}
"""


def _time(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _state(doc: dict[str, Any]) -> str:
    state = doc.get("state") or {}
    result = state.get("result_state") or ""
    life_cycle = escape(state.get("life_cycle_state", ""))
    return f'<span class="{escape(result)}">{life_cycle} {escape(result)}</span>'


class Pages:
    def __init__(self, jobs: JobsApi) -> None:
        self.jobs = jobs

    def register(self, router: Router) -> None:
        router.plain("GET", r"/(?:jobs/(?P<job_id>\d+)/)?runs/(?P<run_id>\d+)", self.run_page)
        router.plain("GET", r"/(?:jobs/\d+/)?runs/(?P<run_id>\d+)/notebook", self.notebook_page)

    def run_page(self, req: Request, run_id: str, job_id: str | None = None) -> Response:
        try:
            doc, only = self.jobs.lookup(int(run_id))
        except ApiError as err:
            return Response.html(f"<h1>{escape(err.message)}</h1>", err.status)
        tasks = [only] if only is not None else doc.get("tasks", [])
        rows = []
        for task in tasks:
            link = f"/runs/{task['run_id']}/notebook"
            rows.append(
                "<tr>"
                f"<td>{escape(task['task_key'])}</td><td>{_state(task)}</td>"
                f"<td>{_time(task.get('start_time'))}</td><td>{_time(task.get('end_time'))}</td>"
                f"<td>{escape((task.get('state') or {}).get('state_message', ''))}</td>"
                f'<td><a href="{link}">executed notebook</a></td></tr>'
            )
        title = f"Run {doc['run_id']} of {doc.get('run_name', '')}"
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
            f"<p>Job: {escape(str(doc.get('job_id', '(one-time run)')))} &middot; "
            f"State: {_state(doc)} &middot; Started: {_time(doc.get('start_time'))} &middot; "
            f"Ended: {_time(doc.get('end_time'))}</p>"
            "<table><tr><th>Task</th><th>State</th><th>Started</th><th>Ended</th>"
            "<th>Message</th><th></th></tr>" + "".join(rows) + "</table></body></html>"
        )
        return Response.html(body)

    def notebook_page(self, req: Request, run_id: str) -> Response:
        try:
            doc, task = self.jobs.lookup(int(run_id))
        except ApiError as err:
            return Response.html(f"<h1>{escape(err.message)}</h1>", err.status)
        if task is None:
            if len(doc.get("tasks", [])) != 1:
                return Response.html("<h1>Pick a task run to see its notebook</h1>", 400)
            task = doc["tasks"][0]
        html = self.jobs.executed_html(task)
        if html is None:
            return Response.html("<h1>The notebook has not run yet</h1>", 404)
        return Response.html(html)
