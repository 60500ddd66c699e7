"""Databricks cell magics: what a cell asks for, and the kernel code that does it.

This module owns the reading of a cell's first line (``%python``, ``%r``, ``%sh``, ``%pip``,
``%run``, ``%md``, ``%sql``, ...) into a :data:`CellAction`, and the generation of the
Python or R code that runs a ``%sh`` script or a SQL cell inside a
kernel, so their processes are the kernel's children (killed with it) and see its working
directory and environment. Python-side helpers live in ``shell_magics`` and ``sql_cells``
(imported in the kernel).

SQL runs where Databricks runs it: ``%sql`` cells of Python and R notebooks and every cell of
a SQL notebook are :class:`RunSql`. A SQL notebook runs in a Python kernel
(:func:`kernel_language`), so its ``%python`` cells run there too; an R notebook's SQL cells
run in a Python kernel beside the R one (the executor's), as R has no Spark here.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.local.state.notebook_format import Cell, Language

__all__ = [
    "CellAction",
    "RunCode",
    "RunNotebook",
    "RunShell",
    "RunSql",
    "Skip",
    "Unsupported",
    "kernel_language",
    "plan_cell",
    "resolve_run_path",
    "shell_code",
    "sql_code",
    "widgets_code",
]

KERNEL_HELPERS = "orchestrator.local.kernel.shell_magics"
SQL_HELPERS = "orchestrator.local.kernel.sql_cells"

_MAGIC = re.compile(r"%([A-Za-z][\w-]*)(?:\s+(.*))?")
_OWN_LANGUAGE_MAGIC = {"PYTHON": "python", "R": "r", "SQL": "sql", "SCALA": "scala"}
_LANGUAGE_MAGICS = frozenset({"python", "r", "sql", "scala"})
_LANGUAGE_NAMES = {"PYTHON": "Python", "R": "R", "SQL": "SQL", "SCALA": "Scala"}


@dataclass(frozen=True)
class Skip:
    """Nothing to run (markdown, empty cell)."""


@dataclass(frozen=True)
class RunCode:
    """Code in the notebook's language."""

    code: str


@dataclass(frozen=True)
class RunSql:
    """A SQL cell: ``%sql`` in a Python or R notebook, or a cell of a SQL notebook."""

    sql: str


@dataclass(frozen=True)
class RunShell:
    """A ``%sh`` script."""

    script: str


@dataclass(frozen=True)
class RunNotebook:
    """``%run <path>``: a workspace path as written, relative or absolute."""

    path: str


@dataclass(frozen=True)
class Unsupported:
    """A cell the local workspace cannot run; ``message`` says why."""

    message: str


CellAction = Skip | RunCode | RunSql | RunShell | RunNotebook | Unsupported


def kernel_language(language: Language) -> Language:
    """The kernel a notebook of ``language`` runs in: SQL notebooks run in Python's."""
    return "PYTHON" if language == "SQL" else language


def plan_cell(cell: Cell, language: Language) -> CellAction:
    """What running ``cell`` of a ``language`` notebook means."""
    if cell.kind == "markdown" or not cell.source.strip():
        return Skip()
    first, _, rest = cell.source.partition("\n")
    match = _MAGIC.fullmatch(first.rstrip()) if first.startswith("%") else None
    if match is None:
        return RunSql(cell.source) if language == "SQL" else RunCode(cell.source)
    name = match.group(1).lower()
    inline = match.group(2) or ""
    body = f"{inline}\n{rest}" if inline and rest else inline or rest
    if name == "sql" and language in ("PYTHON", "R", "SQL"):
        return RunSql(body) if body.strip() else Skip()
    if name == _OWN_LANGUAGE_MAGIC[language]:
        return RunCode(body) if body.strip() else Skip()
    if name == "python" and language == "SQL":
        return RunCode(body) if body.strip() else Skip()
    if name in _LANGUAGE_MAGICS:
        return Unsupported(
            f"%{name} cells are not supported by the local workspace "
            f"(in a {_LANGUAGE_NAMES[language]} notebook)"
        )
    if name == "sh":
        return RunShell(body) if body.strip() else Skip()
    if name == "pip":
        return _plan_pip(cell.source, first, language)
    if name == "run":
        return _plan_run(inline, rest)
    if name in ("md", "md-sandbox"):
        return Skip()
    if language == "PYTHON" and name not in ("fs", "conda"):
        return RunCode(cell.source)  # an IPython magic such as %timeit
    return Unsupported(f"%{name} cells are not supported by the local workspace")


def _plan_pip(source: str, first: str, language: Language) -> CellAction:
    """A cell that starts with ``%pip``: in a Python notebook it runs as code, where the
    kernel's ``%pip`` magic is the managed one (``shell_magics.pip_magic``, which a ``%pip``
    line anywhere in a cell reaches too); a first line that cannot be a ``%pip install`` is
    refused before the kernel starts. Other notebooks have no ``%pip`` on Databricks either:
    its documentation says to use ``%python`` cells with ``%pip`` there."""
    if language != "PYTHON":
        return Unsupported(
            f"%pip is not supported in {_LANGUAGE_NAMES[language]} notebooks (on Databricks, "
            "manage Python packages from a %python cell)"
        )
    try:
        args = shlex.split(first.rstrip().rstrip("\\")[len("%pip") :], comments=True)
    except ValueError as exc:
        return Unsupported(f"%pip: cannot parse the command line: {exc}")
    if not args or args[0] != "install":
        return Unsupported("only %pip install is supported by the local workspace")
    if len(args) == 1 and not first.rstrip().endswith("\\"):
        return Unsupported("%pip install: no package given")
    return RunCode(source)


def _plan_run(inline: str, rest: str) -> CellAction:
    if rest.strip():
        return Unsupported("%run must be alone in its cell")
    try:
        args = shlex.split(inline)
    except ValueError as exc:
        return Unsupported(f"%run: cannot parse the path: {exc}")
    if not args:
        return Unsupported("%run: no notebook path given")
    if len(args) > 1:
        return Unsupported("%run with arguments is not supported by the local workspace")
    return RunNotebook(args[0])


def shell_code(script: str, *, language: Language, script_file: Path) -> str:
    """Kernel code running ``script`` with bash (its output in the cell, failing on non-zero).

    For R the script is written to ``script_file`` and its output collected in a file next
    to it (R cannot stream a child's output: it is printed when the script ends).
    """
    if language == "PYTHON":
        return f"__import__({KERNEL_HELPERS!r}, fromlist=['_']).run_shell({script!r})"
    script_file.write_text(script, encoding="utf-8")
    path = json.dumps(str(script_file), ensure_ascii=False)
    output = json.dumps(f"{script_file}.out", ensure_ascii=False)
    return (
        "local({\n"
        f"  status <- system2('bash', shQuote({path}), stdout = {output}, stderr = {output})\n"
        f"  out <- readLines({output}, warn = FALSE, encoding = 'UTF-8')\n"
        "  if (length(out)) cat(paste0(out, '\\n'), sep = '')\n"
        "  if (status != 0)\n"
        "    stop(sprintf('shell command exited with code %d', status), call. = FALSE)\n"
        "  invisible(NULL)\n"
        "})"
    )


def sql_code(sql: str, *, cell: str, widgets_file: Path | None = None) -> str:
    """Python kernel code running a SQL cell (``cell`` names it in errors); an R notebook's
    widget values are read from ``widgets_file`` (see :func:`widgets_code`)."""
    extra = f", widgets_file={str(widgets_file)!r}" if widgets_file is not None else ""
    return (
        f"__import__({SQL_HELPERS!r}, fromlist=['_']).run_sql_cell({sql!r}, cell={cell!r}{extra})"
    )


def widgets_code(widgets_file: Path) -> str:
    """R kernel code writing the notebook's widget values (run parameters win) as a JSON
    object to ``widgets_file``, for the SQL cell that runs next in the Python kernel."""
    path = json.dumps(str(widgets_file), ensure_ascii=False)
    return (
        "local(writeLines(as.character(jsonlite::toJSON(dbutils.widgets.getAll(), "
        f"auto_unbox = TRUE, null = 'null')), {path}, useBytes = TRUE))"
    )


def resolve_run_path(current: str, target: str) -> str:
    """The absolute workspace path of ``%run target`` written in notebook ``current``."""
    if target.startswith("/Workspace/"):
        target = target[len("/Workspace") :]
    joined = (
        target if target.startswith("/") else posixpath.join(posixpath.dirname(current), target)
    )
    normalized = posixpath.normpath(joined)
    return "/" + normalized.lstrip("/")
