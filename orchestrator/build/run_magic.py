"""A failure inside a notebook that a failing cell included with ``%run``, named as the user
knows it: the included notebook and its cell.

``%run ./helpers`` runs the helper's cells in the caller's context, so the failing cell a run's
export shows is the ``%run`` cell, and the error is the helper's. The build has the helper's
source (it deployed it), so :func:`through_run_magic` follows the ``%run`` path to that source,
splits it into cells as Databricks does (``COMMAND ----------`` separators, or an ``.ipynb``'s
cells) and finds the cell the error came from: the last one holding what the error names (R's
``Error in <call>``, the message, a traceback's source line), through nested ``%run`` cells.
When no cell matches, the ``%run`` cell stays the failing cell, with the helper named.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from orchestrator.adapters.databricks import DeployItem
from orchestrator.build.failures import shown_path
from orchestrator.results.outcomes import SOURCE_LINES, FailurePoint

__all__ = ["notebook_cells", "through_run_magic"]

MAX_DEPTH = 5
_RUN = re.compile(r"^\s*%run\s+(\S+)")
_SEPARATOR = re.compile(r"^(?:#|--|//) COMMAND -{10}\s*$", re.MULTILINE)
_HEADER = re.compile(r"^(?:#|--|//) Databricks notebook source\s*\n")
_MAGIC = re.compile(r"^(?:#|--|//) MAGIC ?", re.MULTILINE)
_R_CALL = re.compile(r"Error in (.+?) ?:")
_TRACE_LINE = re.compile(r"^\s*(?:-+>\s*)?\d+\s+(.+\S)\s*$")


def notebook_cells(source: str) -> list[str]:
    """A notebook's cells, as the notebook UI numbers them (from 1: index + 1)."""
    if source.lstrip().startswith("{"):
        try:
            document = json.loads(source)
        except ValueError:
            return [source]
        cells = document.get("cells") if isinstance(document, dict) else None
        if isinstance(cells, list):
            return [
                "".join(c["source"]) if isinstance(c.get("source"), list) else str(c.get("source"))
                for c in cells
                if isinstance(c, dict)
            ]
    body = _HEADER.sub("", source, count=1)
    return [_MAGIC.sub("", cell).strip("\n") for cell in _SEPARATOR.split(body)]


def _needles(point: FailurePoint) -> list[str]:
    """What the error names that its cell's source holds: R's call, the message, source lines
    of the traceback; most specific first."""
    message = point.error.split(": ", 1)[-1] if ": " in point.error else point.error
    found = [m.group(1) for m in _R_CALL.finditer(point.error)]
    found += [m.group(1) for line in point.trace.splitlines() if (m := _TRACE_LINE.match(line))]
    found += [message.strip()]
    return [n for n in found if len(n) >= 6]


def through_run_magic(
    point: FailurePoint, items: Sequence[DeployItem], *, build_folder: str
) -> FailurePoint:
    """``point`` moved into the notebook its ``%run`` cell included, as deep as it goes."""
    by_target: Mapping[str, DeployItem] = {i.target: i for i in items if i.kind == "NOTEBOOK"}
    path = point.notebook
    if not path.startswith("/"):
        path = posixpath.join(build_folder, path)
    for _ in range(MAX_DEPTH):
        match = _RUN.match(point.cell_source.splitlines()[0] if point.cell_source else "")
        if match is None:
            break
        target = match.group(1)
        target = posixpath.normpath(
            target if target.startswith("/") else posixpath.join(posixpath.dirname(path), target)
        )
        item = by_target.get(target)
        if item is None:
            break
        try:
            cells = notebook_cells(Path(item.source).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            break
        number = _failing_cell(cells, _needles(point))
        through = (*point.through, point.where())
        shown = shown_path(target, build_folder)
        if number is None:
            return replace(point, through=through, notebook=shown, cell=None, cell_source="")
        lines = [line for line in cells[number - 1].splitlines() if line.strip()]
        head = "\n".join(lines[:SOURCE_LINES])
        point = replace(
            point,
            notebook=shown,
            cell=number,
            cell_source=head,
            through=through,
        )
        path = target
    return point


def _failing_cell(cells: Sequence[str], needles: Sequence[str]) -> int | None:
    for needle in needles:
        hits = [n for n, cell in enumerate(cells, start=1) if needle in cell]
        if hits:
            return hits[-1]
    return None
