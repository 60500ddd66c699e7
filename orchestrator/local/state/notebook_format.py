"""Notebook formats of the local workspace: Databricks SOURCE text, Jupyter ``.ipynb`` and HTML.

This module owns the in-memory notebook model (:class:`Notebook`, :class:`Cell`) and the
conversions between it and the formats the Workspace API imports and exports. It is pure
Python; ``nbformat`` (validation of ``.ipynb`` input) and ``nbconvert`` (HTML export) are
imported lazily by the functions that need them.

SOURCE format, as Databricks exports it::

    # Databricks notebook source
    print("first cell")

    # COMMAND ----------

    # MAGIC %md
    # MAGIC # A markdown cell

A cell in another language than the notebook's is a *magic* cell: every line is prefixed with
``<comment> MAGIC`` and its first line is the magic (``%sh``, ``%sql``, ``%run``, ...). In the
model such a cell keeps its magic line (``Cell("code", "%sh\\nls")``), except ``%md`` cells,
which become ``Cell("markdown", text)``. Cell sources are normalised: no leading or trailing
blank lines.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from orchestrator.local.state.jupyter_imports import jupyter_module

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "CELL_RUN_METADATA",
    "Cell",
    "CellKind",
    "CellState",
    "Language",
    "Notebook",
    "NotebookFormatError",
    "comment_prefix",
    "export_html",
    "ipynb_document",
    "language_from_extension",
    "looks_like_source",
    "parse_ipynb",
    "parse_source",
    "to_ipynb",
    "to_source",
    "warm_exporter",
]

Language = Literal["PYTHON", "R", "SQL", "SCALA"]
CellKind = Literal["code", "markdown"]

#: how a top-level cell of an executed notebook ended: ran to its end (or exited the
#: notebook), raised, or was running when the run was cancelled or timed out
CellState = Literal["finished", "error", "stopped"]

LANGUAGES: tuple[Language, ...] = get_args(Language)
HEADER_TEXT = "Databricks notebook source"
DATABRICKS_METADATA_KEY = "application/vnd.databricks.v1+notebook"
#: the key of an executed cell's metadata where the executor keeps how it ran:
#: ``{"state": CellState, "start_ms": int, "finish_ms": int}`` (wall clock); a cell without
#: it never started
CELL_RUN_METADATA = "orchestrator.local.run"

_EXPORTER: Any = None
_EXPORTER_LOCK = threading.Lock()
_COMMENT: dict[Language, str] = {"PYTHON": "#", "R": "#", "SQL": "--", "SCALA": "//"}
_FAMILY_DEFAULT: dict[str, Language] = {"#": "PYTHON", "--": "SQL", "//": "SCALA"}
_EXTENSIONS: dict[str, Language] = {".py": "PYTHON", ".r": "R", ".sql": "SQL", ".scala": "SCALA"}
_MD_MAGIC = re.compile(r"%md(-sandbox)?(?=\s|$)")
_KERNELSPECS: dict[Language, dict[str, str]] = {
    "PYTHON": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "R": {"name": "ir", "display_name": "R", "language": "R"},
    "SQL": {"name": "sql", "display_name": "SQL", "language": "sql"},
    "SCALA": {"name": "scala", "display_name": "Scala", "language": "scala"},
}
_LANGUAGE_INFO: dict[Language, dict[str, str]] = {
    "PYTHON": {"name": "python", "file_extension": ".py", "mimetype": "text/x-python"},
    "R": {"name": "R", "file_extension": ".r", "mimetype": "text/x-r-source"},
    "SQL": {"name": "sql", "file_extension": ".sql", "mimetype": "text/x-sql"},
    "SCALA": {"name": "scala", "file_extension": ".scala", "mimetype": "text/x-scala"},
}


class NotebookFormatError(ValueError):
    """Content that is not a notebook in the claimed format."""


@dataclass(frozen=True)
class Cell:
    """One notebook cell. Magic code cells keep their magic line (``"%sh ls"``)."""

    kind: CellKind
    source: str


@dataclass(frozen=True)
class Notebook:
    """A notebook: its default language and its cells in order."""

    language: Language
    cells: tuple[Cell, ...]


def comment_prefix(language: Language) -> str:
    """The line-comment token of ``language`` (``#``, ``--`` or ``//``)."""
    return _COMMENT[language]


def _strip_blank_lines(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _make_cell(source: str) -> Cell:
    """Classify a (normalised) cell source: ``%md`` cells become markdown."""
    first, _, rest = source.partition("\n")
    match = _MD_MAGIC.match(first)
    if match is None:
        return Cell("code", source)
    head = first[match.end() :].strip()
    lines = ([head] if head else []) + (rest.split("\n") if rest else [])
    return Cell("markdown", "\n".join(_strip_blank_lines(lines)))


def _header_family(line: str) -> str | None:
    stripped = line.lstrip("\ufeff").strip()
    for family in _FAMILY_DEFAULT:
        if stripped == f"{family} {HEADER_TEXT}":
            return family
    return None


def _separator(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(prefix)} COMMAND -+")


def parse_source(text: str, language: Language) -> Notebook:
    """Parse Databricks SOURCE text; the header line is optional (plain code is one cell)."""
    lines = text.replace("\r\n", "\n").split("\n")
    family = _header_family(lines[0])
    if family is not None:
        lines = lines[1:]
    prefix = family or _COMMENT[language]
    separator = _separator(prefix)
    chunks: list[list[str]] = [[]]
    for line in lines:
        if separator.fullmatch(line.rstrip()):
            chunks.append([])
        else:
            chunks[-1].append(line)
    if len(chunks) == 1 and not _strip_blank_lines(chunks[0]):
        return Notebook(language, ())
    return Notebook(language, tuple(_decode_chunk(chunk, prefix) for chunk in chunks))


def _decode_chunk(chunk: list[str], prefix: str) -> Cell:
    """One cell from the lines between two separators (``MAGIC`` prefixes removed)."""
    magic, title = f"{prefix} MAGIC", f"{prefix} DBTITLE"
    body = _strip_blank_lines(chunk)
    first = next((i for i, line in enumerate(body) if not line.startswith(title)), len(body))
    if first < len(body) and _is_magic_line(body[first], magic):
        body = _strip_blank_lines([_unmagic(line, magic) for line in body[first:]])
    return _make_cell("\n".join(body))


def _is_magic_line(line: str, magic: str) -> bool:
    return line == magic or line.startswith(magic + " ")


def _unmagic(line: str, magic: str) -> str:
    if line == magic:
        return ""
    if line.startswith(magic + " "):
        return line[len(magic) + 1 :]
    return line


def _encode_cell(cell: Cell, prefix: str) -> str:
    """The SOURCE text of one cell: plain code, or ``MAGIC``-prefixed lines."""
    if cell.kind == "markdown":
        lines = ["%md", *(cell.source.split("\n") if cell.source else [])]
    else:
        lines = cell.source.split("\n")
        plain_ok = not cell.source.startswith("%") and not any(
            _separator(prefix).fullmatch(line.rstrip()) for line in lines
        )
        if plain_ok and _decode_chunk(lines, prefix) == cell:
            return cell.source
    magic = f"{prefix} MAGIC"
    return "\n".join(f"{magic} {line}" if line else magic for line in lines)


def to_source(nb: Notebook) -> str:
    """Render ``nb`` as Databricks SOURCE text (the inverse of :func:`parse_source`).

    Code that would not read back as itself (it starts with a magic, or holds a line that
    looks like a separator or a ``MAGIC`` line) is written ``MAGIC``-prefixed.
    """
    prefix = _COMMENT[nb.language]
    body = f"\n\n{prefix} COMMAND ----------\n\n".join(
        _encode_cell(cell, prefix) for cell in nb.cells
    )
    return f"{prefix} {HEADER_TEXT}\n{body}\n"


def looks_like_source(content: bytes) -> Language | None:
    """The default language of the comment family of a Databricks header, else ``None``."""
    first = content[:200].split(b"\n", 1)[0]
    try:
        family = _header_family(first.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    return None if family is None else _FAMILY_DEFAULT[family]


def language_from_extension(filename: str) -> Language | None:
    """``.py`` / ``.r`` / ``.R`` / ``.sql`` / ``.scala`` to a language; else ``None``."""
    dot = filename.rfind(".")
    if dot < 0 or "/" in filename[dot:]:
        return None
    return _EXTENSIONS.get(filename[dot:].lower())


def _language_from_metadata(metadata: Mapping[str, Any]) -> Language | None:
    candidates: list[object] = []
    databricks = metadata.get(DATABRICKS_METADATA_KEY)
    if isinstance(databricks, dict):
        candidates.append(databricks.get("language"))
    kernelspec = metadata.get("kernelspec")
    if isinstance(kernelspec, dict):
        candidates.append(kernelspec.get("language"))
    language_info = metadata.get("language_info")
    if isinstance(language_info, dict):
        candidates.append(language_info.get("name"))
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.upper() in LANGUAGES:
            return cast("Language", candidate.upper())
    return None


def _nbformat() -> Any:
    """``nbformat``, imported on first use (it pulls in jsonschema)."""
    return jupyter_module("nbformat")


def parse_ipynb(data: bytes, *, default_language: Language = "PYTHON") -> Notebook:
    """Parse Jupyter JSON; the language comes from the metadata, else ``default_language``."""
    try:
        node = _nbformat().reads(data.decode("utf-8-sig"), as_version=4)
    except Exception as exc:
        raise NotebookFormatError(f"not a valid .ipynb notebook: {exc}") from exc
    language = _language_from_metadata(node.get("metadata", {})) or default_language
    cells: list[Cell] = []
    for raw in node.get("cells", []):
        source = "\n".join(_strip_blank_lines(str(raw.get("source", "")).split("\n")))
        if raw.get("cell_type") == "markdown":
            cell = _make_cell(source)  # drops a "%md" line some exporters keep
            cells.append(cell if cell.kind == "markdown" else Cell("markdown", source))
        elif raw.get("cell_type") == "code":
            cells.append(_make_cell(source))
    return Notebook(language, tuple(cells))


def _source_lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def ipynb_document(
    nb: Notebook,
    *,
    name: str,
    outputs: Iterable[list[dict[str, Any]] | None] | None = None,
    execution_counts: Iterable[int | None] | None = None,
    cell_metadata: Iterable[Mapping[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """An nbformat v4.5 document (as a dict) for ``nb``; optional per-cell outputs,
    execution counts and metadata."""
    cell_outputs = list(outputs) if outputs is not None else [None] * len(nb.cells)
    counts = list(execution_counts) if execution_counts is not None else [None] * len(nb.cells)
    metadata_of = list(cell_metadata) if cell_metadata is not None else []
    cells: list[dict[str, Any]] = []
    for index, cell in enumerate(nb.cells):
        own = metadata_of[index] if index < len(metadata_of) else None
        entry: dict[str, Any] = {
            "cell_type": cell.kind,
            "id": f"cell-{index + 1}",
            "metadata": dict(own or {}),
            "source": _source_lines(cell.source),
        }
        if cell.kind == "code":
            entry["execution_count"] = counts[index] if index < len(counts) else None
            produced = cell_outputs[index] if index < len(cell_outputs) else None
            entry["outputs"] = produced or []
        cells.append(entry)
    metadata = {
        "kernelspec": dict(_KERNELSPECS[nb.language]),
        "language_info": dict(_LANGUAGE_INFO[nb.language]),
        DATABRICKS_METADATA_KEY: {"language": nb.language.lower(), "notebookName": name},
    }
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def to_ipynb(nb: Notebook, *, name: str) -> bytes:
    """Render ``nb`` as nbformat v4 JSON with the kernelspec and language_info of its language."""
    return json.dumps(ipynb_document(nb, name=name), indent=1, ensure_ascii=False).encode()


def export_html(nb_or_ipynb: Notebook | bytes, *, title: str) -> str:
    """Render a notebook (or ``.ipynb`` bytes, e.g. an executed notebook) as standalone HTML."""
    data = to_ipynb(nb_or_ipynb, name=title) if isinstance(nb_or_ipynb, Notebook) else nb_or_ipynb
    nbformat = _nbformat()
    try:
        # nbformat.reads without its schema check, which only logs what it finds (the
        # notebooks exported here are the workspace's own) and compiles the schema first:
        # 0.15 CPU-s in the process's first export
        node = nbformat.convert(nbformat.reader.reads(data.decode("utf-8-sig")), 4)
    except Exception as exc:
        raise NotebookFormatError(f"not a valid .ipynb notebook: {exc}") from exc
    with _EXPORTER_LOCK:  # one exporter, its templates loaded once; it is not thread-safe
        global _EXPORTER  # a lazily built singleton
        if _EXPORTER is None:
            # nbconvert's HTMLExporter, its last pass made cheaper (see the module)
            _EXPORTER = jupyter_module("orchestrator.local.state.notebook_html").LeanHTMLExporter()
        body, _resources = _EXPORTER.from_notebook_node(
            node, resources={"metadata": {"name": title}}
        )
    return str(body)


def warm_exporter() -> None:
    """Import nbconvert and load its templates now (about a second), so the first export of a
    run does not pay for it; called in the background when the workspace warms up."""
    export_html(Notebook("PYTHON", ()), title="warm-up")
