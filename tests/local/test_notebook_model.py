"""The run export's page as Databricks makes it: the version mark and the notebook model
(base64 of the URL-quoted JSON), read back with the recipe public decoders use, beside
nbconvert's rendering, from an executed notebook the runtime kept."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from typing import Any

from orchestrator.local.kernel.child_view import child_run_link
from orchestrator.local.kernel.display import TABLE_METADATA
from orchestrator.local.state.notebook_format import CELL_RUN_METADATA, DATABRICKS_METADATA_KEY
from orchestrator.local.state.notebook_model import encode_model, export_page, with_model

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg=="
)
MODEL = re.compile(r"var __DATABRICKS_NOTEBOOK_MODEL = '([^']*)';")


def decode(page: str) -> dict[str, Any]:
    """The public recipe (databricks-sdk-py's integration tests read exports this way)."""
    (encoded,) = MODEL.findall(page)
    model: dict[str, Any] = json.loads(urllib.parse.unquote(base64.b64decode(encoded).decode()))
    return model


def ran(state: str, start: int = 1000, finish: int = 2000) -> dict[str, Any]:
    return {CELL_RUN_METADATA: {"state": state, "start_ms": start, "finish_ms": finish}}


def cell(kind: str, source: str, *outputs: dict[str, Any], meta: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"cell_type": kind, "source": source, "metadata": meta or {}}
    if kind == "code":
        entry["outputs"] = list(outputs)
        entry["execution_count"] = None
    return entry


def executed(*cells: dict[str, Any], language: str = "python") -> bytes:
    document = {
        "cells": [{**c, "id": f"cell-{i}"} for i, c in enumerate(cells, start=1)],
        "metadata": {DATABRICKS_METADATA_KEY: {"language": language, "notebookName": "nb"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(document).encode()


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def display(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


ERROR = {
    "output_type": "error",
    "ename": "ZeroDivisionError",
    "evalue": "division by zero",
    "traceback": [
        "\x1b[0;31m-------\x1b[0m",
        "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero",
    ],
}
TABLE = {
    "schema": [{"name": "id", "type": '"long"'}, {"name": "name", "type": '"string"'}],
    "data": [[1, "a"], [2, "b"]],
}


def test_the_page_holds_the_version_mark_the_model_and_the_rendered_notebook() -> None:
    data = executed(
        cell("markdown", "# Title", meta=ran("finished", 10, 11)),
        cell(
            "code",
            "print('hi')\ndisplay(df)",
            stream("\x1b[1mhi\x1b[0m\n"),
            stream("warned\n", "stderr"),
            display({"text/html": "<table></table>", "text/plain": "t"}, {TABLE_METADATA: TABLE}),
            display({"image/png": PNG[:40] + "\n" + PNG[40:], "text/plain": "<Figure>"}),
            {
                "output_type": "execute_result",
                "data": {"text/plain": "42"},
                "metadata": {},
                "execution_count": 1,
            },
            meta=ran("finished", 1000, 1500),
        ),
        cell("code", "%sh\nls", stream("file\n"), meta=ran("finished", 1500, 1600)),
        cell(
            "code",
            "dbutils.notebook.run('child', 60)",
            display({"text/html": child_run_link(57, "http://127.0.0.1:1/runs/57")}),
            display({"text/html": "<b>shown</b>"}),
            meta=ran("finished", 1600, 1700),
        ),
        cell("code", "x = 1", meta=ran("finished", 1700, 1800)),
        cell("code", "print('before')\n1 / 0", stream("before\n"), ERROR, meta=ran("error")),
        cell("code", "print('never')"),
        cell("markdown", "never rendered either"),
    )
    page = export_page(data, notebook_path="/Users/me/proj/nb", orig_id=123)
    assert page.count('<meta name="databricks-html-version" content="1">') == 1
    assert page.index("databricks-html-version") < page.index("</head>")
    # nbconvert's rendering, readable without the model
    assert "<pre>warned\n</pre>" in page and "<p>never rendered either</p>" in page
    model = decode(page)
    assert {k: model[k] for k in ("version", "origId", "name", "language")} == {
        "version": "NotebookV1",
        "origId": 123,
        "name": "nb",
        "language": "python",
    }
    assert model["dashboards"] == [] and model["globalVars"] == {}
    assert model["inputWidgets"] == {} and model["notebookMetadata"] == {}
    assert model["iPythonMetadata"] is None
    commands = model["commands"]
    assert [c["command"] for c in commands] == [
        "%md\n# Title",
        "print('hi')\ndisplay(df)",
        "%sh\nls",
        "dbutils.notebook.run('child', 60)",
        "x = 1",
        "print('before')\n1 / 0",
        "print('never')",
        "%md\nnever rendered either",
    ]
    assert [c["state"] for c in commands] == ["finished"] * 5 + ["error", "skipped", "skipped"]
    assert [c["position"] for c in commands] == [float(i) for i in range(1, 9)]
    assert len({c["origId"] for c in commands}) == 8
    assert len({c["guid"] for c in commands} | {c["nuid"] for c in commands}) == 16
    for command in commands:
        assert command["version"] == "CommandV1" and command["subtype"] == "command"
        assert command["commandType"] == "auto" and command["commandVersion"] == 0
        assert command["collapsed"] is False and command["iPythonMetadata"] is None
        assert command["hideCommandCode"] is False and command["hideCommandResult"] is False
    markdown, printed, shell, child, quiet, failed, skipped, _ = commands
    assert markdown["results"] is None and markdown["startTime"] == 10
    assert (printed["startTime"], printed["submitTime"], printed["finishTime"]) == (
        1000,
        1000,
        1500,
    )
    results = printed["results"]
    assert results["type"] == "listResults"
    assert {k: results[k] for k in results if k != "data"} == {
        "type": "listResults",
        "arguments": {},
        "addedWidgets": {},
        "removedWidgets": [],
        "datasetInfos": [],
        "metadata": {},
    }
    assert results["data"] == [
        {"type": "ansi", "data": "\x1b[1mhi\x1b[0m\n"},
        {"type": "ansi", "data": "warned\n"},
        {"type": "table", "schema": TABLE["schema"], "data": TABLE["data"]},
        {"type": "image", "data": PNG},
        {"type": "ansi", "data": "42"},
    ]
    assert shell["results"]["data"] == [{"type": "ansi", "data": "file\n"}]
    assert child["results"]["data"] == [
        {"type": "html", "data": '<a href="http://127.0.0.1:1/runs/57">Notebook job #57</a>'},
        {"type": "html", "data": "<b>shown</b>"},
    ]
    assert quiet["results"]["data"] == []
    for ok in (markdown, printed, shell, child, quiet):
        assert ok["errorSummary"] is None and ok["error"] is None
        assert ok["errorTraceType"] is None
    assert failed["errorSummary"] == "ZeroDivisionError: division by zero"
    assert failed["error"] == "-------\nZeroDivisionError: division by zero"
    assert failed["errorTraceType"] == "ansi"
    assert failed["results"]["data"] == [{"type": "ansi", "data": "before\n"}]
    assert skipped["results"] is None
    assert (skipped["startTime"], skipped["submitTime"], skipped["finishTime"]) == (0, 0, 0)


def test_the_model_is_quoted_as_encode_uri_component_quotes() -> None:
    model = {"text": "a b/c?d&e=f 'g' (h) ~*!-_. é ✓ \"q\""}
    encoded = base64.b64decode(encode_model(model)).decode("ascii")
    text = json.dumps(model, separators=(",", ":"), ensure_ascii=False)
    assert encoded == urllib.parse.quote(text, safe="-_.!~*'()")
    assert "'" in encoded and "%20" in encoded and "%2F" in encoded and "%C3%A9" in encoded
    assert json.loads(urllib.parse.unquote(encoded)) == model
    # a page without a head still gets both, first
    page = with_model("<p>x</p>", model)
    assert page.startswith('<meta name="databricks-html-version" content="1">')
    assert decode(page) == model


def test_the_language_and_name_come_from_the_notebook() -> None:
    data = executed(cell("code", "x <- 1", meta=ran("finished")), language="r")
    model = decode(export_page(data, notebook_path="/a/b/tests", orig_id=9))
    assert (model["language"], model["name"], model["origId"]) == ("r", "tests", 9)


def test_a_stopped_cell_is_an_error_without_a_summary() -> None:
    """The cell running when the run was cancelled or timed out did not finish."""
    data = executed(cell("code", "sleep()", stream("started\n"), meta=ran("stopped")))
    (command,) = decode(export_page(data, notebook_path="/nb", orig_id=1))["commands"]
    assert command["state"] == "error"
    assert command["results"]["data"] == [{"type": "ansi", "data": "started\n"}]
    assert command["errorSummary"] is None and command["error"] is None
