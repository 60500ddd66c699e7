"""An executed notebook as the Jobs UI shows a task run: cells, outputs and child notebooks.

Rendered from the ``.ipynb`` the runtime writes for each task run. Text is escaped; an HTML
output goes into an ``<iframe sandbox srcdoc>`` without ``allow-scripts`` or
``allow-same-origin``, so it can neither run a script nor reach this origin (the page's CSP,
which the iframe inherits, forbids scripts too). The runtime shows a ``dbutils.notebook.run``
child as an HTML fragment in the caller's output; such a fragment is replaced here by the
child's own executed notebook (``control/child-*/executed_notebook.ipynb`` beside the caller's),
rendered like its parent, nested.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from html import unescape
from pathlib import Path
from typing import Any

from orchestrator.local.kernel.child_view import output_text
from orchestrator.local.ui.shell import STYLESHEET_PATH, esc

__all__ = ["render_notebook"]

MAX_DEPTH = 5
_CHILD_MARK = '<details open style="border-left:3px solid #888;padding-left:.6em">'
_CHILD_SUMMARY = re.compile(r"<summary>Notebook run: (?P<path>.*) \((?P<status>[^()]*)\)</summary>")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _children(executed: Path) -> Iterator[Path]:
    """The child notebooks' executed files, in the order they finished."""
    found = list((executed.parent / "control").glob("child-*/executed_notebook.ipynb"))
    found.sort(key=lambda p: p.stat().st_mtime_ns)
    return iter(found)


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
    def __init__(self) -> None:
        self.failed_cells: list[str] = []

    def output(self, output: Mapping[str, Any], children: Iterator[Path], depth: int) -> str:
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
            if html.startswith(_CHILD_MARK):
                child = self.child(html, children, depth)
                if child:
                    return child
            return _iframe(html)
        image = _image(data)
        if image:
            return image
        if "image/svg+xml" in data:
            return _iframe(output_text(data["image/svg+xml"]))
        if "text/plain" in data:
            return f'<pre class="out">{esc(output_text(data["text/plain"]))}</pre>'
        return ""

    def child(self, fragment: str, children: Iterator[Path], depth: int) -> str | None:
        executed = next(children, None)
        if executed is None or depth >= MAX_DEPTH:
            return None
        match = _CHILD_SUMMARY.search(fragment)
        path = unescape(match["path"]) if match else executed.parent.name
        status = unescape(match["status"]) if match else ""
        inner = self.notebook(executed, depth + 1, label=path)
        return (
            f'<section class="child" data-child-notebook="{esc(path)}">'
            f'<h3>Notebook run: <span class="mono">{esc(path)}</span> '
            f'<span class="badge {esc(status)}">{esc(status)}</span></h3>{inner}</section>'
        )

    def cell(
        self, index: int, cell: Mapping[str, Any], children: Iterator[Path], depth: int, label: str
    ) -> str:
        source = output_text(cell.get("source"))
        if cell.get("cell_type") == "markdown":
            return f'<div class="cell md-cell"><div class="md">{esc(source)}</div></div>'
        outputs = [o for o in cell.get("outputs") or [] if isinstance(o, dict)]
        failed = any(o.get("output_type") == "error" for o in outputs)
        if failed:
            self.failed_cells.append(f"{label} cell {index}")
        rendered = "".join(self.output(o, children, depth) for o in outputs)
        count = cell.get("execution_count")
        head = f"Cell {index}" + (f" [{count}]" if count else "") + (" - failed" if failed else "")
        return (
            f'<div class="cell{" failed" if failed else ""}" data-cell="{index}"'
            f'{" data-failed=true" if failed else ""}><div class="head">{esc(head)}</div>'
            f'<pre class="src">{esc(source)}</pre>{rendered}</div>'
        )

    def notebook(self, executed: Path, depth: int, *, label: str) -> str:
        document = _load(executed)
        if document is None:
            return '<p class="muted">The executed notebook could not be read.</p>'
        children = _children(executed)
        cells = [c for c in document.get("cells") or [] if isinstance(c, dict)]
        return "".join(
            self.cell(i, c, children, depth, label) for i, c in enumerate(cells, start=1)
        )


def render_notebook(executed: Path, *, label: str) -> tuple[str, list[str]]:
    """The notebook's cells as HTML, and the failed cells (``"<label> cell <n>"``)."""
    renderer = _Renderer()
    html = renderer.notebook(executed, 0, label=label)
    return html, renderer.failed_cells
