"""Page shell of the local Jobs UI: stylesheet, security headers, escaping and formatting.

Every page is a complete document from :func:`page`, sent with a strict Content-Security-Policy:
no script runs at all (none is needed), styles come only from ``/static/ui.css`` and images
only from this origin or ``data:`` URLs (notebook plots). Values are escaped with :func:`esc`;
nothing reaches the HTML unescaped except markup built here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from orchestrator.local.api.routing import Response

__all__ = [
    "CSP",
    "STYLESHEET",
    "STYLESHEET_PATH",
    "duration",
    "esc",
    "not_found",
    "page",
    "state_badge",
    "state_of",
    "stylesheet",
    "timestamp",
    "url",
]

STYLESHEET_PATH = "/static/ui.css"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
)
STYLESHEET = """
:root {
  --fg:#1b1b1b;
  --muted:#5f6368;
  --line:#dadce0;
  --ok:#0a7a2f;
  --bad:#b00020;
  --warn:#8a6d00;
  --run:#1a57c5;
  --bg2:#f6f7f9;
}
body {
  font-family:system-ui,-apple-system,"Segoe UI",sans-serif;
  margin:0;
  color:var(--fg);
  font-size:14px;
}
header {
  background:#1b3139;
  color:#fff;
  padding:.6rem 1.5rem;
  display:flex;
  gap:1.5rem;
  align-items:center;
}
header a {color:#fff;text-decoration:none}
header .brand {font-weight:600}
main {padding:1rem 1.5rem}
h1 {font-size:1.4rem;margin:.4rem 0 1rem}
h2 {font-size:1.1rem;margin:1.4rem 0 .6rem}
nav.crumbs {color:var(--muted);margin-bottom:.3rem}
nav.crumbs a {color:var(--muted)}
table {border-collapse:collapse;width:100%}
td,th {
  border-bottom:1px solid var(--line);
  padding:.4rem .6rem;
  text-align:left;
  vertical-align:top;
}
th {background:var(--bg2);font-weight:600;white-space:nowrap}
td.num {text-align:right;font-variant-numeric:tabular-nums}
code,.mono {font-family:ui-monospace,monospace}
.badge {
  display:inline-block;
  padding:.05rem .45rem;
  border-radius:.7rem;
  font-size:.85em;
  font-weight:600;
  border:1px solid currentColor;
  white-space:nowrap;
}
.SUCCESS,.SUCCESS_WITH_FAILURES {color:var(--ok)}
.FAILED,.TIMEDOUT,.INTERNAL_ERROR,.UPSTREAM_FAILED,.MAXIMUM_CONCURRENT_RUNS_REACHED {
  color:var(--bad);
}
.CANCELED,.UPSTREAM_CANCELED,.EXCLUDED,.SKIPPED {color:var(--warn)}
.RUNNING,.PENDING,.QUEUED,.BLOCKED,.TERMINATING,.WAITING_FOR_RETRY {color:var(--run)}
.muted {color:var(--muted)}
.error {color:var(--bad);white-space:pre-wrap;max-width:60rem}
dl.facts {display:grid;grid-template-columns:max-content auto;gap:.25rem 1rem}
dl.facts dt {color:var(--muted)}
dl.facts dd {margin:0}
form.filters {display:flex;gap:.8rem;align-items:end;margin:.5rem 0 1rem}
form.filters label {display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}
.pager {margin:1rem 0;display:flex;gap:1rem}
.live {color:var(--run);font-weight:600}
svg.timeline {width:100%;max-width:60rem;display:block}
svg.timeline text {font-size:12px;fill:var(--fg)}
svg.timeline rect.SUCCESS {fill:#4caf50}
svg.timeline rect.FAILED,svg.timeline rect.TIMEDOUT,svg.timeline rect.UPSTREAM_FAILED {
  fill:#e53935;
}
svg.timeline rect.RUNNING,svg.timeline rect.PENDING {fill:#5c8df6}
svg.timeline rect.CANCELED,svg.timeline rect.SKIPPED,svg.timeline rect.UPSTREAM_CANCELED {
  fill:#f0b400;
}
svg.timeline rect.track {fill:var(--bg2)}
.cell {border:1px solid var(--line);border-radius:4px;margin:.8rem 0}
.cell .src {
  background:var(--bg2);
  margin:0;
  padding:.5rem .7rem;
  white-space:pre-wrap;
  overflow-x:auto;
}
.cell .head {
  font-size:.8em;
  color:var(--muted);
  padding:.2rem .7rem;
  border-bottom:1px solid var(--line);
}
.cell.failed {border-color:var(--bad)}
.out {margin:0;padding:.4rem .7rem;white-space:pre-wrap;overflow-x:auto}
.out.err {color:var(--bad)}
.md {padding:.2rem .7rem;white-space:pre-wrap}
iframe.html-out {width:100%;border:0;resize:vertical;display:block}
img.plot {max-width:100%}
td.when {white-space:nowrap}
details.error summary {cursor:pointer}
td .error {max-width:32rem;overflow-wrap:anywhere}
section.child {border-left:3px solid var(--run);margin:.5rem 0 .5rem .7rem;padding-left:.8rem}
"""


def esc(value: object) -> str:
    """``value`` as HTML text (quotes included, so it is safe in attributes too)."""
    return escape("" if value is None else str(value), quote=True)


def url(path: str, query: Mapping[str, object] | None = None) -> str:
    """A link: ``path`` plus the non-empty ``query`` values (escape it with :func:`esc`)."""
    pairs = {k: str(v) for k, v in (query or {}).items() if v not in (None, "")}
    return f"{path}?{urlencode(pairs)}" if pairs else path


def timestamp(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(ms: int | None) -> str:
    """``1h 02m``, ``3m 05s``, ``12.3s``; empty when unknown."""
    if ms is None or ms < 0:
        return ""
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def state_of(doc: Mapping[str, Any]) -> tuple[str, str]:
    """``(life_cycle_state, result_state)`` of a run or task document ("" when unset)."""
    state = doc.get("state") or {}
    return str(state.get("life_cycle_state") or ""), str(state.get("result_state") or "")


def state_badge(doc: Mapping[str, Any]) -> str:
    """The state as Databricks shows it: the result once there is one, else the life cycle."""
    life_cycle, result = state_of(doc)
    shown = result or life_cycle or "UNKNOWN"
    title = f"{life_cycle} {result}".strip()
    return (
        f'<span class="badge {esc(shown)}" data-state="{esc(shown)}" title="{esc(title)}">'
        f"{esc(shown.replace('_', ' ').title())}</span>"
    )


def page(
    title: str,
    body: str,
    *,
    crumbs: Iterable[tuple[str, str]] = (),
    refresh_seconds: int | None = None,
    status: int = 200,
) -> Response:
    """A full page; ``refresh_seconds`` reloads it (set only while something is running)."""
    trail = " / ".join(f'<a href="{esc(href)}">{esc(text)}</a>' for href, text in crumbs)
    refresh = (
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">' if refresh_seconds else ""
    )
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} - Local workspace</title>{refresh}"
        f'<link rel="stylesheet" href="{STYLESHEET_PATH}"></head><body>'
        '<header><a class="brand" href="/">Local Databricks workspace</a>'
        '<a href="/jobs">Jobs</a></header><main>'
        f"{f'<nav class=crumbs>{trail}</nav>' if trail else ''}"
        f"<h1>{esc(title)}</h1>{body}</main></body></html>"
    )
    data = document.encode("utf-8", "replace")  # an older state's lone surrogate: "?"
    return Response(status, data, "text/html; charset=utf-8", _HEADERS)


def not_found(message: str) -> Response:
    return page("Not found", f"<p>{esc(message)}</p>", crumbs=[("/jobs", "Jobs")], status=404)


def stylesheet() -> Response:
    headers = (("Cache-Control", "max-age=300"), ("X-Content-Type-Options", "nosniff"))
    return Response(200, STYLESHEET.encode("utf-8"), "text/css; charset=utf-8", headers)
