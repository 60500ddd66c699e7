"""An executed notebook as Databricks exports a run (``runs/export``): its HTML page, with the
notebook model inside.

Databricks' export of a run is an HTML page holding ``<meta name="databricks-html-version"
content="1">`` and a script ``var __DATABRICKS_NOTEBOOK_MODEL = '<model>';``, where
``<model>`` is the base64 of the JSON model URL-quoted as JavaScript's ``encodeURIComponent``
quotes; public readers decode it with
``json.loads(urllib.parse.unquote(base64.b64decode(model).decode()))``. The page made here
holds that model and, for a reader without JavaScript, nbconvert's rendering of the notebook
(:func:`~.notebook_format.export_html`), so an exported file stays readable offline.

The model (:func:`notebook_model`) is made from the executed ``.ipynb`` the runtime keeps:
one command per cell, in order, with its source as Databricks shows it (``%md`` and other
magics included), its state (``finished``, ``error``, or ``skipped`` for cells that never
ran), its times (the executor's, in the cells' :data:`~.notebook_format.CELL_RUN_METADATA`),
its results as a ``listResults`` of ``ansi`` (streams and plain text, ANSI codes kept),
``html`` (a child run's link among them), ``table`` (a ``display()`` table) and ``image``
items, and its error as ``errorSummary`` (``"<ExceptionType>: <message>"``) and ``error``
(the traceback without ANSI codes).
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from orchestrator.local.kernel.display import TABLE_METADATA
from orchestrator.local.state import notebook_format
from orchestrator.local.state.notebook_format import CELL_RUN_METADATA, DATABRICKS_METADATA_KEY

__all__ = [
    "HTML_VERSION_META",
    "MODEL_VARIABLE",
    "encode_model",
    "export_page",
    "notebook_model",
    "with_model",
]

HTML_VERSION_META = '<meta name="databricks-html-version" content="1">'
MODEL_VARIABLE = "__DATABRICKS_NOTEBOOK_MODEL"
#: what JavaScript's encodeURIComponent leaves as it is, besides letters and digits
_URI_COMPONENT_SAFE = "-_.!~*'()"
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)
_LANGUAGES = ("python", "r", "sql", "scala")


def export_page(executed: bytes, *, notebook_path: str, orig_id: int) -> str:
    """The export of an executed notebook (``.ipynb`` bytes): nbconvert's page with the
    model of the run's notebook (``orig_id``: the task run's id) in it."""
    body = notebook_format.export_html(executed, title=notebook_path)
    document = json.loads(executed.decode("utf-8-sig"))
    name = posixpath.basename(notebook_path) or "notebook"
    return with_model(body, notebook_model(document, orig_id=orig_id, name=name))


def with_model(page: str, model: Mapping[str, Any]) -> str:
    """``page`` with Databricks' version mark and notebook model at the start of its head."""
    mark = (
        f"{HTML_VERSION_META}\n<script>var {MODEL_VARIABLE} = '{encode_model(model)}';</script>\n"
    )
    head = _HEAD.search(page)
    if head is None:
        return mark + page
    return page[: head.end()] + "\n" + mark + page[head.end() :]


def encode_model(model: Mapping[str, Any]) -> str:
    """base64 of the JSON model quoted as ``encodeURIComponent`` quotes it."""
    try:
        text = json.dumps(model, separators=(",", ":"), ensure_ascii=False)
        quoted = quote(text, safe=_URI_COMPONENT_SAFE)
    except UnicodeEncodeError:  # lone surrogates in some output: JSON escapes them
        quoted = quote(json.dumps(model, separators=(",", ":")), safe=_URI_COMPONENT_SAFE)
    return base64.b64encode(quoted.encode("ascii")).decode("ascii")


def _guid(orig_id: int, *parts: object) -> str:
    """A stable id for a part of a run's notebook (the export is rendered once and cached)."""
    name = "/".join(str(p) for p in ("orchestrator-local", orig_id, *parts))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _language(metadata: Mapping[str, Any]) -> str:
    databricks = metadata.get(DATABRICKS_METADATA_KEY)
    candidates = [databricks.get("language")] if isinstance(databricks, Mapping) else []
    kernelspec = metadata.get("kernelspec")
    if isinstance(kernelspec, Mapping):
        candidates.append(kernelspec.get("language"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.lower() in _LANGUAGES:
            return candidate.lower()
    return "python"


def notebook_model(document: Mapping[str, Any], *, orig_id: int, name: str) -> dict[str, Any]:
    """Databricks' ``NotebookV1`` model of an executed notebook (an nbformat v4 document)."""
    cells = [c for c in document.get("cells") or [] if isinstance(c, Mapping)]
    metadata = document.get("metadata")
    return {
        "version": "NotebookV1",
        "origId": orig_id,
        "name": name,
        "language": _language(metadata if isinstance(metadata, Mapping) else {}),
        "commands": [
            _command(cell, position, orig_id) for position, cell in enumerate(cells, start=1)
        ],
        "dashboards": [],
        "guid": _guid(orig_id, "notebook"),
        "globalVars": {},
        "iPythonMetadata": None,
        "inputWidgets": {},
        "notebookMetadata": {},
    }


def _command(cell: Mapping[str, Any], position: int, orig_id: int) -> dict[str, Any]:
    source = _text(cell.get("source"))
    markdown = cell.get("cell_type") == "markdown"
    if markdown:
        source = f"%md\n{source}" if source else "%md"
    metadata = cell.get("metadata")
    run = metadata.get(CELL_RUN_METADATA) if isinstance(metadata, Mapping) else None
    outputs = [o for o in cell.get("outputs") or [] if isinstance(o, Mapping)]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if not isinstance(run, Mapping):
        state, results, start, finish = "skipped", None, 0, 0
    else:
        failed = bool(errors) or run.get("state") in ("error", "stopped")
        state = "error" if failed else "finished"
        results = None if markdown else _results(outputs)
        start, finish = int(run.get("start_ms") or 0), int(run.get("finish_ms") or 0)
    summary = trace = None
    if errors:
        error = errors[-1]
        name, value = _text(error.get("ename")), _text(error.get("evalue"))
        summary = f"{name}: {value}" if name else value
        lines = [_ANSI.sub("", _text(line)) for line in error.get("traceback") or []]
        trace = "\n".join(lines) or summary
    return {
        "version": "CommandV1",
        "origId": position,
        "guid": _guid(orig_id, "command", position),
        "subtype": "command",
        "commandType": "auto",
        "position": float(position),
        "command": source,
        "commandVersion": 0,
        "state": state,
        "results": results,
        "errorSummary": summary,
        "error": trace,
        "errorTraceType": "ansi" if trace is not None else None,
        "startTime": start,
        "submitTime": start,
        "finishTime": finish,
        "collapsed": False,
        "hideCommandCode": False,
        "hideCommandResult": False,
        "iPythonMetadata": None,
        "nuid": _guid(orig_id, "nuid", position),
    }


def _results(outputs: list[Mapping[str, Any]]) -> dict[str, Any]:
    items = [item for output in outputs if (item := _result_item(output)) is not None]
    return {
        "type": "listResults",
        "data": items,
        "arguments": {},
        "addedWidgets": {},
        "removedWidgets": [],
        "datasetInfos": [],
        "metadata": {},
    }


def _result_item(output: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = output.get("output_type")
    if kind == "stream":
        return {"type": "ansi", "data": _text(output.get("text"))}
    if kind not in ("display_data", "execute_result"):
        return None  # errors are the command's errorSummary and error
    data = output.get("data")
    data = data if isinstance(data, Mapping) else {}
    metadata = output.get("metadata")
    table = metadata.get(TABLE_METADATA) if isinstance(metadata, Mapping) else None
    if isinstance(table, Mapping) and table.get("schema"):
        return {"type": "table", "schema": table["schema"], "data": table.get("data") or []}
    if "text/html" in data:
        return {"type": "html", "data": _text(data["text/html"])}
    if "image/png" in data:
        return {"type": "image", "data": "".join(_text(data["image/png"]).split())}
    if "text/plain" in data:
        return {"type": "ansi", "data": _text(data["text/plain"])}
    return None
