"""An executed notebook as a ``runs/export`` page carries it: the notebook model.

Databricks' export page renders the notebook with JavaScript from a model embedded in the page,
``var __DATABRICKS_NOTEBOOK_MODEL = '<base64 of the URL-encoded JSON>';`` (the same recipe every
public reader of these pages uses: ``json.loads(unquote(b64decode(s)))``); there is no
``<pre>`` with the output to read. :func:`read_notebook` decodes it into a
:class:`NotebookRun`: the notebook's cells in order, numbered as the notebook UI numbers them
(``Cmd 1``, ``Cmd 2``...), each with its state, its printed output (cleaned:
:mod:`.text_cleaning`), its error summary and trace, and the ephemeral runs it started with
``dbutils.notebook.run`` (the "Notebook job #N" links the UI shows under the cell).

Result items the model holds: ``ansi`` and ``text`` (printed text), ``html``, ``table``
(``schema`` and rows), ``image``; a cell that failed has ``state`` ``error`` with
``errorSummary`` and ``error`` (its trace), or a result of ``type`` ``error`` with ``summary``
and ``cause``: both are read.
"""

from __future__ import annotations

import base64
import binascii
import html as html_lib
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.results.text_cleaning import clean_output

__all__ = ["Cell", "ChildRun", "NotebookRun", "read_notebook"]

_MODEL = re.compile(r"__DATABRICKS_NOTEBOOK_MODEL\s*=\s*'([^']*)'")
_TAG = re.compile(r"<[^>]+>")
_CHILD = re.compile(
    r"""<a\b[^>]*href=["']([^"']+)["'][^>]*>\s*Notebook job #(\d+)\s*</a>|Notebook job #(\d+)"""
)
_TABLE_ROWS = 20


@dataclass(frozen=True)
class ChildRun:
    """An ephemeral run a cell started with ``dbutils.notebook.run``."""

    run_id: int
    url: str | None = None


@dataclass(frozen=True)
class Cell:
    number: int  # as the notebook UI numbers it: the cell's place, from 1
    source: str
    state: str  # finished, error, skipped, ...
    output: str  # what it printed and showed, cleaned
    error_summary: str = ""
    error_trace: str = ""
    children: tuple[ChildRun, ...] = ()
    seconds: float | None = None

    @property
    def failed(self) -> bool:
        return self.state == "error" or bool(self.error_summary)

    @property
    def is_code(self) -> bool:
        return not self.source.lstrip().startswith("%md")


@dataclass(frozen=True)
class NotebookRun:
    name: str
    language: str
    cells: tuple[Cell, ...]

    @property
    def failing_cell(self) -> Cell | None:
        return next((c for c in self.cells if c.failed), None)

    def output(self) -> str:
        """What the code cells printed, up to and with the failing cell (the cells after it
        did not run; their markdown is not output)."""
        failing = self.failing_cell
        parts = []
        for cell in self.cells:
            if failing is not None and cell.number > failing.number:
                break
            if cell.is_code and cell.output:
                parts.append(cell.output)
        return "\n".join(parts)


def decode_model(page: str) -> dict[str, Any] | None:
    """The model in an export page, or None when the page carries none (or a broken one)."""
    match = _MODEL.search(page)
    if match is None:
        return None
    try:
        quoted = base64.b64decode(match.group(1), validate=False).decode("utf-8")
        model = json.loads(urllib.parse.unquote(quoted))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return model if isinstance(model, dict) else None


def _items(results: Any) -> list[Mapping[str, Any]]:
    if not isinstance(results, Mapping):
        return []
    if results.get("type") == "listResults" and isinstance(results.get("data"), list):
        return [i for i in results["data"] if isinstance(i, Mapping)]
    return [results]


def _item_text(item: Mapping[str, Any]) -> str:
    kind, data = item.get("type"), item.get("data")
    if kind == "table" and isinstance(data, list):
        columns = [
            str(c.get("name", "")) for c in item.get("schema") or [] if isinstance(c, Mapping)
        ]
        rows = [" | ".join("" if v is None else str(v) for v in row) for row in data[:_TABLE_ROWS]]
        more = [f"... {len(data) - _TABLE_ROWS} more rows"] if len(data) > _TABLE_ROWS else []
        return "\n".join([" | ".join(columns), *rows, *more])
    if kind in ("html", "htmlSandbox") and isinstance(data, str):
        return html_lib.unescape(_TAG.sub(" ", data)).strip()
    if kind == "image":
        return ""
    if kind == "error":
        return ""  # the cell's error is read on its own
    return data if isinstance(data, str) else ""


def _children(command: Mapping[str, Any]) -> tuple[ChildRun, ...]:
    found: dict[int, ChildRun] = {}
    texts = [str(i.get("data")) for i in _items(command.get("results")) if i.get("data")]
    texts += [str(command.get("error") or ""), str(command.get("errorSummary") or "")]
    for text in texts:
        for match in _CHILD.finditer(text):
            run_id = int(match.group(2) or match.group(3))
            found.setdefault(
                run_id, ChildRun(run_id, html_lib.unescape(match.group(1) or "") or None)
            )
    return tuple(found.values())


def _error(command: Mapping[str, Any]) -> tuple[str, str]:
    summary = str(command.get("errorSummary") or "")
    trace = str(command.get("error") or "")
    for item in _items(command.get("results")):
        if item.get("type") == "error":
            summary = summary or str(item.get("summary") or "")
            trace = trace or str(item.get("cause") or item.get("data") or "")
    return clean_output(html_lib.unescape(_TAG.sub("", summary))), clean_output(trace)


def _seconds(command: Mapping[str, Any]) -> float | None:
    start, finish = command.get("startTime"), command.get("finishTime")
    if isinstance(start, (int, float)) and isinstance(finish, (int, float)) and finish >= start > 0:
        return (finish - start) / 1000
    return None


def read_notebook(page: str) -> NotebookRun | None:
    """The executed notebook an export page carries, or None when it carries no model."""
    model = decode_model(page)
    if model is None:
        return None
    commands = [c for c in model.get("commands") or [] if isinstance(c, Mapping)]
    commands.sort(key=lambda c: float(c.get("position") or 0))
    cells = []
    for number, command in enumerate(commands, start=1):
        summary, trace = _error(command)
        output = "\n".join(t for t in (_item_text(i) for i in _items(command.get("results"))) if t)
        cells.append(
            Cell(
                number=number,
                source=str(command.get("command") or ""),
                state=str(command.get("state") or ""),
                output=clean_output(output),
                error_summary=summary,
                error_trace=trace,
                children=_children(command),
                seconds=_seconds(command),
            )
        )
    return NotebookRun(
        name=str(model.get("name") or ""),
        language=str(model.get("language") or ""),
        cells=tuple(cells),
    )
