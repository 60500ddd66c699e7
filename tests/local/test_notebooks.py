"""Notebook formats: Databricks SOURCE, Jupyter .ipynb and HTML export."""

from __future__ import annotations

import json

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.local.state.notebook_format import (
    Cell,
    Language,
    Notebook,
    NotebookFormatError,
    export_html,
    language_from_extension,
    looks_like_source,
    parse_ipynb,
    parse_source,
    to_ipynb,
    to_source,
)

DATABRICKS_EXPORT = """\
# Databricks notebook source
# MAGIC %md
# MAGIC # Notebook
# MAGIC
# MAGIC - item

# COMMAND ----------

message = "welcome"

# COMMAND ----------

display(message)

# COMMAND ----------

# MAGIC %sql
# MAGIC
# MAGIC select "hello"

# COMMAND ----------

# DBTITLE 1,Shell
# MAGIC %sh
# MAGIC ps
# MAGIC

# COMMAND ----------

# MAGIC %md ### Inline title
# MAGIC text

# COMMAND ----------

# MAGIC %run ./lib/helpers

# COMMAND ----------

# DBTITLE 1,Titled code
x = 1
"""


def test_parse_databricks_export() -> None:
    nb = parse_source(DATABRICKS_EXPORT, "PYTHON")
    assert nb == Notebook(
        "PYTHON",
        (
            Cell("markdown", "# Notebook\n\n- item"),
            Cell("code", 'message = "welcome"'),
            Cell("code", "display(message)"),
            Cell("code", '%sql\n\nselect "hello"'),
            Cell("code", "%sh\nps"),
            Cell("markdown", "### Inline title\ntext"),
            Cell("code", "%run ./lib/helpers"),
            Cell("code", "# DBTITLE 1,Titled code\nx = 1"),
        ),
    )


def test_to_source_is_the_databricks_layout() -> None:
    nb = Notebook(
        "PYTHON",
        (
            Cell("code", "x = 1"),
            Cell("markdown", "# Title\n\ntext"),
            Cell("code", "%sh\nls\n\npwd"),
        ),
    )
    assert to_source(nb) == (
        "# Databricks notebook source\n"
        "x = 1\n\n# COMMAND ----------\n\n"
        "# MAGIC %md\n# MAGIC # Title\n# MAGIC\n# MAGIC text\n\n# COMMAND ----------\n\n"
        "# MAGIC %sh\n# MAGIC ls\n# MAGIC\n# MAGIC pwd\n"
    )


@pytest.mark.parametrize(
    ("language", "prefix"), [("R", "#"), ("SQL", "--"), ("SCALA", "//"), ("PYTHON", "#")]
)
def test_comment_families(language: Language, prefix: str) -> None:
    text = (
        f"{prefix} Databricks notebook source\ncode one\n\n{prefix} COMMAND ----------\n\n"
        f"{prefix} MAGIC %md\n{prefix} MAGIC hi\n"
    )
    nb = parse_source(text, language)
    assert nb == Notebook(language, (Cell("code", "code one"), Cell("markdown", "hi")))
    assert to_source(nb) == text


def test_plain_text_without_header_and_crlf() -> None:
    assert parse_source("x <- 1\r\nprint(x)\r\n", "R") == Notebook(
        "R", (Cell("code", "x <- 1\nprint(x)"),)
    )
    assert parse_source("a = 1\n# COMMAND ----------\nb = 2", "PYTHON").cells == (
        Cell("code", "a = 1"),
        Cell("code", "b = 2"),
    )
    assert parse_source("", "PYTHON") == Notebook("PYTHON", ())
    assert parse_source("# Databricks notebook source\n\n", "PYTHON") == Notebook("PYTHON", ())


def test_empty_cells_are_kept() -> None:
    text = (
        "# Databricks notebook source\na\n\n# COMMAND ----------\n\n\n\n# COMMAND ----------\n\nb\n"
    )
    nb = parse_source(text, "PYTHON")
    assert nb.cells == (Cell("code", "a"), Cell("code", ""), Cell("code", "b"))
    assert parse_source(to_source(nb), "PYTHON") == nb


def test_code_that_looks_like_format_lines_is_magic_encoded() -> None:
    tricky = Notebook(
        "PYTHON",
        (
            Cell("code", "s = '''\n# COMMAND ----------\n'''"),
            Cell("code", "# MAGIC not a magic\nx = 1"),
            Cell("code", "%timeit 1 + 1"),
        ),
    )
    assert parse_source(to_source(tricky), "PYTHON") == tricky


def test_looks_like_source_and_extensions() -> None:
    assert looks_like_source(b"# Databricks notebook source\nx = 1\n") == "PYTHON"
    assert looks_like_source(b"\xef\xbb\xbf-- Databricks notebook source\n") == "SQL"
    assert looks_like_source(b"// Databricks notebook source") == "SCALA"
    assert looks_like_source(b"print('hello')\n") is None
    assert looks_like_source(b"\xff\xfe\x00garbage") is None
    assert language_from_extension("tests/test_x.py") == "PYTHON"
    assert language_from_extension("a.R") == "R"
    assert language_from_extension("a.r") == "R"
    assert language_from_extension("q.sql") == "SQL"
    assert language_from_extension("Main.scala") == "SCALA"
    assert language_from_extension("nb.ipynb") is None
    assert language_from_extension("README") is None
    assert language_from_extension("dir.py/file") is None


# --------------------------------------------------------------------------- ipynb


def _jupyter_notebook(language: str) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "x", "display_name": "X", "language": language}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("x = 1\n"),
        nbformat.v4.new_code_cell("%sh\nls"),
        nbformat.v4.new_raw_cell("raw is dropped"),
    ]
    return nbformat.writes(nb).encode()


def test_parse_ipynb_written_by_jupyter() -> None:
    nb = parse_ipynb(_jupyter_notebook("R"))
    assert nb == Notebook(
        "R", (Cell("markdown", "# Title"), Cell("code", "x = 1"), Cell("code", "%sh\nls"))
    )
    assert parse_ipynb(_jupyter_notebook("julia"), default_language="R").language == "R"


def test_parse_ipynb_markdown_with_md_magic_line() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("%md\n# Title"), nbformat.v4.new_code_cell("%md x")]
    parsed = parse_ipynb(nbformat.writes(nb).encode())
    assert parsed.cells == (Cell("markdown", "# Title"), Cell("markdown", "x"))


def test_parse_ipynb_databricks_metadata_wins() -> None:
    doc = json.loads(_jupyter_notebook("python"))
    doc["metadata"]["application/vnd.databricks.v1+notebook"] = {"language": "sql"}
    assert parse_ipynb(json.dumps(doc).encode()).language == "SQL"


@pytest.mark.parametrize(
    "data", [b"not json", b"{}", b'{"nbformat": 4, "cells": "nope"}', b"\xff\xfe"]
)
def test_parse_ipynb_rejects_invalid(data: bytes) -> None:
    with pytest.raises(NotebookFormatError):
        parse_ipynb(data)


@pytest.mark.parametrize("language", ["PYTHON", "R"])
def test_to_ipynb_is_valid_with_kernelspec(language: Language) -> None:
    nb = Notebook(language, (Cell("markdown", "# T"), Cell("code", "x = 1\ny = 2")))
    data = to_ipynb(nb, name="my notebook")
    node = nbformat.reads(data.decode(), as_version=4)
    nbformat.validate(node)
    assert node.metadata.kernelspec.name == ("python3" if language == "PYTHON" else "ir")
    assert node.metadata.language_info.name == ("python" if language == "PYTHON" else "R")
    assert node.cells[1].source == "x = 1\ny = 2"
    assert parse_ipynb(data) == nb


def test_export_html_of_notebook_and_ipynb() -> None:
    nb = Notebook("R", (Cell("markdown", "# Heading"), Cell("code", 'print("héllo")')))
    html = export_html(nb, title="Report <1>")
    assert "<title>Report &lt;1&gt;</title>" in html
    assert "Heading" in html
    assert "héllo" in html
    from_bytes = export_html(to_ipynb(nb, name="x"), title="t2")
    assert "<title>t2</title>" in from_bytes
    with pytest.raises(NotebookFormatError):
        export_html(b"nope", title="x")


# --------------------------------------------------------------------------- properties

_LANGUAGES: list[Language] = ["PYTHON", "R", "SQL", "SCALA"]
_line = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=30
) | st.sampled_from(
    ["# COMMAND ----------", "# MAGIC %md", "-- MAGIC x", "// COMMAND -", "%sh", "# DBTITLE 1,t"]
)


def _normalize(lines: list[str]) -> str:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(lines)


@st.composite
def _cells(draw: st.DrawFn) -> Cell:
    kind = draw(st.sampled_from(["code", "markdown", "magic"]))
    source = _normalize(draw(st.lists(_line, max_size=6)))
    if source.startswith("%md"):  # a "%md" line in a cell *is* the markdown marker
        source = " " + source
    if kind == "markdown":
        return Cell("markdown", source)
    if kind == "magic":
        return Cell("code", _normalize([draw(st.sampled_from(["%sh", "%sql", "%r x"])), source]))
    return Cell("code", source)


@st.composite
def _notebooks(draw: st.DrawFn) -> Notebook:
    cells = tuple(draw(st.lists(_cells(), max_size=6)))
    if cells == (Cell("code", ""),):  # one empty cell and no cell are the same text
        cells = ()
    return Notebook(draw(st.sampled_from(_LANGUAGES)), cells)


@settings(max_examples=300, deadline=None)
@given(_notebooks())
def test_source_round_trip(nb: Notebook) -> None:
    assert parse_source(to_source(nb), nb.language) == nb


@settings(max_examples=300, deadline=None)
@given(st.lists(_line, max_size=25).map("\n".join), st.sampled_from(_LANGUAGES))
def test_parse_is_stable_on_any_text(text: str, language: Language) -> None:
    nb = parse_source(text, language)
    assert parse_source(to_source(nb), language) == nb


@settings(max_examples=100, deadline=None)
@given(_notebooks())
def test_ipynb_round_trip(nb: Notebook) -> None:
    assert parse_ipynb(to_ipynb(nb, name="n")) == nb


def _every_output() -> nbformat.NotebookNode:
    """An executed notebook with every kind of output the lab template renders differently."""
    png = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
        "RU5ErkJggg=="
    )
    v4 = nbformat.v4
    nb = v4.new_notebook(metadata={"language_info": {"name": "python"}})
    nb.cells = [
        v4.new_markdown_cell("# Title\n\nSome *markdown* with `code` and <b>html</b>."),
        v4.new_code_cell(
            "import pandas as pd\nprint('hi')",
            execution_count=1,
            outputs=[
                v4.new_output("stream", name="stdout", text="hi\n"),
                v4.new_output("stream", name="stderr", text="careful\n"),
            ],
        ),
        v4.new_code_cell(
            "display(df)",
            execution_count=2,
            outputs=[
                v4.new_output(
                    "display_data",
                    data={
                        "text/html": '<table><tr><td>1</td></tr></table><img src="x.png">',
                        "text/plain": "df",
                    },
                ),
                v4.new_output("display_data", data={"image/png": png, "text/plain": "img"}),
                v4.new_output(
                    "execute_result",
                    data={"text/plain": "42", "text/markdown": "**42**"},
                    execution_count=2,
                ),
            ],
        ),
        v4.new_code_cell(
            "1/0",
            execution_count=3,
            outputs=[
                v4.new_output(
                    "error",
                    ename="ZeroDivisionError",
                    evalue="division by zero",
                    traceback=["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"],
                )
            ],
        ),
        v4.new_raw_cell("raw text"),
    ]
    return nb


def test_lean_exporter_writes_nbconvert_s_page_byte_for_byte() -> None:
    """The exporter's last pass (alt text, focusable cells) without CSS selectors changes
    nothing of nbconvert's page: images without alt get one, the cells' input and output
    areas get tabindex, exactly as HTMLExporter's selectors do."""
    import nbconvert

    from orchestrator.local.state.notebook_html import MISSING_ALT, LeanHTMLExporter

    nb = _every_output()
    resources = {"metadata": {"name": "every output"}}
    ours, _ = LeanHTMLExporter().from_notebook_node(nb, resources=dict(resources))
    theirs, _ = nbconvert.HTMLExporter().from_notebook_node(nb, resources=dict(resources))
    assert ours == theirs
    assert ours.count(f'alt="{MISSING_ALT}"') == 2  # the PNG output and the <img> in HTML
    assert ours.count('tabindex="0"') >= 5
