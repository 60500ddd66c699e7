"""How the Jobs UI renders an executed notebook: escaped sources and text, HTML outputs in a
sandboxed iframe, images inline, failed cells marked, and a ``dbutils.notebook.run`` child shown
under its "Notebook job #N" link, from its own run's executed notebook."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

from orchestrator.local.kernel.child_view import child_run_link
from orchestrator.local.ui.notebook_view import MAX_DEPTH, ChildNotebook, render_notebook

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
    assert '<div class="cell failed" id="cell-2" data-cell="2" data-failed=true>' in html
    assert "ZeroDivisionError: division by zero" in html and "\x1b" not in html


def test_a_child_notebook_is_rendered_under_its_link_from_its_own_run(tmp_path: Path) -> None:
    first = write(
        tmp_path / "runs" / "11" / "executed_notebook.ipynb",
        code("print('first child')", {"output_type": "stream", "name": "stdout", "text": "1\n"}),
    )
    second = write(
        tmp_path / "runs" / "21" / "executed_notebook.ipynb",
        code("raise ValueError('child broke')", {"output_type": "error", "traceback": ["boom"]}),
        code("displayHTML(x)", html_output("<p>child html</p>")),
    )
    children = {
        10: ChildNotebook(first, "/b/first", "SUCCESS"),
        20: ChildNotebook(second, "/b/second", "FAILED"),
    }
    looked_up: list[int] = []

    def find_child(run_id: int) -> ChildNotebook | None:
        looked_up.append(run_id)
        return children.get(run_id)

    executed = write(
        tmp_path / "executed_notebook.ipynb",
        code("dbutils.notebook.run('first')", html_output(child_run_link(10, "/runs/10"))),
        code("dbutils.notebook.run('second')", html_output(child_run_link(20, "/runs/20"))),
        code("dbutils.notebook.run('gone')", html_output(child_run_link(30, "/runs/30"))),
    )
    html, failed = render_notebook(executed, label="/entry", find_child=find_child)
    assert looked_up == [10, 20, 30]
    assert failed == ["/b/second cell 1"]
    assert html.index('data-child-notebook="/b/first"') < html.index(
        'data-child-notebook="/b/second"'
    )
    assert 'data-child-run="10"' in html and 'data-child-run="20"' in html
    assert "print(&#x27;first child&#x27;)" in html
    assert html.count("<iframe") == 1 and "child html" in unescape(html)
    # a child whose run is gone keeps its link, and nothing else
    assert '<a href="/runs/30">Notebook job #30</a>' in html
    assert 'data-child-run="30"' not in html
    # without a way to find children, the links stay links
    plain, _ = render_notebook(executed, label="/entry")
    assert "data-child-notebook" not in plain and "first child" not in plain
    assert plain.count("Notebook job #") == 3 and "<iframe" not in plain


def test_nested_children_stop_at_the_depth_bound(tmp_path: Path) -> None:
    """A child whose notebook links to itself (or a long chain) is shown MAX_DEPTH deep."""
    looping = write(
        tmp_path / "runs" / "2" / "executed_notebook.ipynb",
        code("dbutils.notebook.run('me')", html_output(child_run_link(1, "/runs/1"))),
    )
    html, _ = render_notebook(
        looping, label="/loop", find_child=lambda run_id: ChildNotebook(looping, "/loop", "")
    )
    assert html.count("<section") == MAX_DEPTH
    assert html.count("Notebook job #1") == MAX_DEPTH + 1


def test_a_hostile_link_target_is_escaped(tmp_path: Path) -> None:
    """A link's URL is escaped, and a scheme other than http(s) or a path is not linked."""
    hostile = child_run_link(5, 'javascript:alert("x")')
    executed = write(tmp_path / "executed_notebook.ipynb", code("x", html_output(hostile)))
    html, _ = render_notebook(executed, label="/nb")
    assert "<a " not in html and "Notebook job #5" in html
