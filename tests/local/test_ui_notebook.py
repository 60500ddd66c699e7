"""How the Jobs UI renders an executed notebook: escaped sources and text, HTML outputs in a
sandboxed iframe, images inline, failed cells marked, and a ``dbutils.notebook.run`` child shown
from its own executed notebook in place of the fragment the runtime displays."""

from __future__ import annotations

import json
import os
import re
from html import unescape
from pathlib import Path
from typing import Any

from orchestrator.local.kernel.child_view import child_notebook_html
from orchestrator.local.ui.notebook_view import render_notebook

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)


def code(source: str, *outputs: dict[str, Any]) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "outputs": list(outputs), "metadata": {}}


def write(path: Path, *cells: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4}))
    return path


def html_output(html: str) -> dict[str, Any]:
    return {"output_type": "display_data", "data": {"text/html": html}, "metadata": {}}


def test_text_is_escaped_and_html_outputs_are_sandboxed(tmp_path: Path) -> None:
    script = "<script>document.title='pwned'</script><b>bold</b>"
    executed = write(
        tmp_path / "executed_notebook.ipynb",
        {"cell_type": "markdown", "source": "# Title <i>x</i>", "metadata": {}},
        code("print('<b>')", {"output_type": "stream", "name": "stdout", "text": "<b>\n"}),
        code("displayHTML(...)", html_output(script)),
        code("plot()", {"output_type": "display_data", "data": {"image/png": PNG}}),
    )
    html, failed = render_notebook(executed, label="/nb")
    assert failed == []
    outside = re.sub(r'srcdoc="[^"]*"', "", html)
    assert "<script" not in outside and "<b>" not in outside and "<i>" not in outside
    assert "&lt;b&gt;" in outside and "# Title &lt;i&gt;x&lt;/i&gt;" in outside
    (srcdoc,) = re.findall(r'<iframe class="html-out" sandbox="" [^>]*srcdoc="([^"]*)"', html)
    assert script in unescape(srcdoc)
    assert "allow-" not in html
    assert f'src="data:image/png;base64,{PNG}"' in html


def test_a_failed_cell_is_marked_with_its_error(tmp_path: Path) -> None:
    error = {
        "output_type": "error",
        "ename": "ZeroDivisionError",
        "evalue": "division by zero",
        "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"],
    }
    executed = write(tmp_path / "executed_notebook.ipynb", code("x = 1"), code("1 / 0", error))
    html, failed = render_notebook(executed, label="/t/fails")
    assert failed == ["/t/fails cell 2"]
    assert '<div class="cell failed" data-cell="2" data-failed=true>' in html
    assert "ZeroDivisionError: division by zero" in html and "\x1b" not in html


def test_a_child_notebook_is_rendered_from_its_executed_notebook(tmp_path: Path) -> None:
    control = tmp_path / "control"
    first = write(
        control / "child-a" / "executed_notebook.ipynb",
        code("print('first child')", {"output_type": "stream", "name": "stdout", "text": "1\n"}),
    )
    second = write(
        control / "child-b" / "executed_notebook.ipynb",
        code("raise ValueError('child broke')", {"output_type": "error", "traceback": ["boom"]}),
        code("displayHTML(x)", html_output("<p>child html</p>")),
    )
    os.utime(first, ns=(1_000_000_000, 1_000_000_000))
    os.utime(second, ns=(2_000_000_000, 2_000_000_000))
    fragments = [
        child_notebook_html(first, path="/b/first", status="SUCCESS"),
        child_notebook_html(second, path="/b/second", status="FAILED"),
    ]
    executed = write(
        tmp_path / "executed_notebook.ipynb",
        code("dbutils.notebook.run('first')", html_output(fragments[0])),
        code("dbutils.notebook.run('second')", html_output(fragments[1])),
    )
    html, failed = render_notebook(executed, label="/entry")
    assert failed == ["/b/second cell 1"]
    assert html.index('data-child-notebook="/b/first"') < html.index(
        'data-child-notebook="/b/second"'
    )
    assert "print(&#x27;first child&#x27;)" in html
    assert html.count("<iframe") == 1 and "child html" in unescape(html)
