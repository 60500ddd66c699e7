"""Shows a child notebook's executed cells in the parent's output after ``dbutils.notebook.run``.

Databricks shows a link to the child's run there ("Notebook job #N"); the local workspace has no
page of its own for child runs, so the parent's output carries the child's cells and outputs
instead, and with it the exported HTML of the parent (the build's artifacts). Standard library
only: this runs inside user kernels.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

__all__ = ["MAX_TEXT", "child_notebook_html", "output_text", "show_child_notebook"]

MAX_TEXT = 200_000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def output_text(value: Any) -> str:
    """An output's text (a string or nbformat's list of lines), without ANSI codes, at most
    :data:`MAX_TEXT` characters (the Jobs UI shows outputs with it too)."""
    text = "".join(value) if isinstance(value, list) else str(value or "")
    text = _ANSI.sub("", text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n*** output truncated ***"
    return text


def _output_html(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre>{html.escape(output_text(output.get('text')))}</pre>"
    if kind == "error":
        trace = "\n".join(output_text(line) for line in output.get("traceback") or [])
        return f'<pre style="color:#b00020">{html.escape(trace)}</pre>'
    data = output.get("data") or {}
    if "text/html" in data:
        return output_text(data["text/html"])
    if "text/plain" in data:
        return f"<pre>{html.escape(output_text(data['text/plain']))}</pre>"
    return ""


def child_notebook_html(executed_notebook: Path, *, path: str, status: str) -> str:
    """The child's cells and outputs as an HTML fragment ("" when the file is unreadable)."""
    try:
        document = json.loads(executed_notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    parts = [
        '<details open style="border-left:3px solid #888;padding-left:.6em">',
        f"<summary>Notebook run: {html.escape(path)} ({html.escape(status)})</summary>",
    ]
    for cell in document.get("cells") or []:
        source = output_text(cell.get("source"))
        if cell.get("cell_type") == "markdown":
            parts.append(f"<pre style='color:#555'>{html.escape(source)}</pre>")
            continue
        parts.append(f"<pre style='background:#f4f4f4'>{html.escape(source)}</pre>")
        parts.extend(_output_html(o) for o in cell.get("outputs") or [])
    parts.append("</details>")
    return "\n".join(parts)


def show_child_notebook(result: dict[str, Any], *, path: str) -> None:
    """Display the child's executed notebook in the current cell's output, if there is one."""
    executed = result.get("executed_notebook")
    if not executed:
        return
    fragment = child_notebook_html(
        Path(str(executed)), path=path, status=str(result.get("status") or "")
    )
    if not fragment:
        return
    try:
        from IPython.display import display
    except ImportError:  # not in a kernel
        return
    display({"text/html": fragment}, raw=True)  # type: ignore[no-untyped-call]
