"""An executed notebook as the Jobs UI shows a task run: cells, outputs and child notebooks.

Rendered from the ``.ipynb`` the runtime writes for each task run. Text is escaped; an HTML
output goes into an ``<iframe sandbox srcdoc>`` without ``allow-scripts`` or
``allow-same-origin``, so it can neither run a script nor reach this origin (the page's CSP,
which the iframe inherits, forbids scripts too).

A ``dbutils.notebook.run`` child leaves only its link in the caller's output ("Notebook job
#<run id>", as on Databricks, and so in the caller's export). As a convenience of this UI,
which no API offers, the link is followed to the child's own executed notebook in the store
(``find_child``: run id -> its notebook) and the child is shown under it, rendered like its
parent, nested up to :data:`MAX_DEPTH` levels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

from orchestrator.local.kernel.child_view import CHILD_RUN_LINK, output_text
from orchestrator.local.ui.shell import STYLESHEET_PATH, esc

__all__ = ["ChildNotebook", "render_notebook"]

MAX_DEPTH = 5
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")


@dataclass(frozen=True)
class ChildNotebook:
    """A child run the UI shows under its link: its executed notebook, path and result."""

    executed: Path
    path: str
    status: str


FindChild = Callable[[int], "ChildNotebook | None"]


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _iframe(html: str) -> str:
    lines = html.count("\n") + sum(html.count(t) for t in ("<tr", "<br", "<p", "<li", "<h"))
    height = min(600, max(60, 30 + 22 * lines))
    document = (
        f'<!doctype html><meta charset="utf-8"><link rel="stylesheet" href="{STYLESHEET_PATH}">'
        f"{html}"
    )
    return (
        f'<iframe class="html-out" sandbox="" referrerpolicy="no-referrer" title="HTML output" '
        f'height="{height}" srcdoc="{esc(document)}"></iframe>'
    )


def _image(data: Mapping[str, Any]) -> str | None:
    for mime in ("image/png", "image/jpeg", "image/gif"):
        payload = output_text(data.get(mime))
        if payload and _BASE64.match(payload):
            compact = "".join(payload.split())
            return f'<img class="plot" alt="{esc(mime)} output" src="data:{mime};base64,{compact}">'
    return None


class _Renderer:
    def __init__(self, find_child: FindChild | None) -> None:
        self.failed_cells: list[str] = []
        self.find_child = find_child

    def output(self, output: Mapping[str, Any], depth: int) -> str:
        kind = output.get("output_type")
        if kind == "stream":
            name = "err" if output.get("name") == "stderr" else ""
            return f'<pre class="out {name}">{esc(output_text(output.get("text")))}</pre>'
        if kind == "error":
            trace = "\n".join(output_text(line) for line in output.get("traceback") or [])
            head = f"{output_text(output.get('ename'))}: {output_text(output.get('evalue'))}"
            return f'<pre class="out err" data-error="true">{esc(trace or head)}</pre>'
        data = output.get("data") or {}
        if "text/html" in data:
            html = output_text(data["text/html"])
            link = CHILD_RUN_LINK.fullmatch(html.strip())
            if link is not None:
                return self.child(int(link["run_id"]), unescape(link["url"]), depth)
            return _iframe(html)
        image = _image(data)
        if image:
            return image
        if "image/svg+xml" in data:
            return _iframe(output_text(data["image/svg+xml"]))
        if "text/plain" in data:
            return f'<pre class="out">{esc(output_text(data["text/plain"]))}</pre>'
        return ""

    def child(self, run_id: int, url: str, depth: int) -> str:
        """The child run's link and, below it, its notebook when it can be found."""
        link = (
            f'<p class="child-link"><a href="{esc(url)}">Notebook job #{run_id}</a></p>'
            if url.startswith(("/", "http://", "https://"))
            else f'<p class="child-link">Notebook job #{run_id}</p>'
        )
        found = self.find_child(run_id) if self.find_child and depth < MAX_DEPTH else None
        if found is None:
            return link
        inner = self.notebook(found.executed, depth + 1, label=found.path)
        return (
            f'<section class="child" data-child-notebook="{esc(found.path)}" '
            f'data-child-run="{run_id}">{link}'
            f'<h3>Notebook run: <span class="mono">{esc(found.path)}</span> '
            f'<span class="badge {esc(found.status)}">{esc(found.status)}</span></h3>{inner}'
            "</section>"
        )

    def cell(self, index: int, cell: Mapping[str, Any], depth: int, label: str) -> str:
        source = output_text(cell.get("source"))
        anchor = f' id="cell-{index}"' if depth == 0 else ""
        if cell.get("cell_type") == "markdown":
            return f'<div class="cell md-cell"{anchor}><div class="md">{esc(source)}</div></div>'
        outputs = [o for o in cell.get("outputs") or [] if isinstance(o, dict)]
        failed = any(o.get("output_type") == "error" for o in outputs)
        if failed:
            self.failed_cells.append(f"{label} cell {index}")
        rendered = "".join(self.output(o, depth) for o in outputs)
        count = cell.get("execution_count")
        head = f"Cell {index}" + (f" [{count}]" if count else "") + (" - failed" if failed else "")
        return (
            f'<div class="cell{" failed" if failed else ""}"{anchor} data-cell="{index}"'
            f'{" data-failed=true" if failed else ""}><div class="head">{esc(head)}</div>'
            f'<pre class="src">{esc(source)}</pre>{rendered}</div>'
        )

    def notebook(self, executed: Path, depth: int, *, label: str) -> str:
        document = _load(executed)
        if document is None:
            return '<p class="muted">The executed notebook could not be read.</p>'
        cells = [c for c in document.get("cells") or [] if isinstance(c, dict)]
        return "".join(self.cell(i, c, depth, label) for i, c in enumerate(cells, start=1))


def render_notebook(
    executed: Path, *, label: str, find_child: FindChild | None = None
) -> tuple[str, list[str]]:
    """The notebook's cells as HTML, and the failed cells (``"<label> cell <n>"``, children's
    included). ``find_child`` finds the executed notebook of a child run a link names."""
    renderer = _Renderer(find_child)
    html = renderer.notebook(executed, 0, label=label)
    return html, renderer.failed_cells
