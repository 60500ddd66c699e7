"""A SQL cell as Databricks runs it: ``%sql`` in Python and R notebooks, and SQL notebooks.

The executor runs a SQL cell as one call of :func:`run_sql_cell` in a Python kernel (the
notebook's own, or, for an R notebook, a Python kernel beside it: SQL needs only the engine).
The cell's statements run in order through the compatibility layer (:mod:`.sql_runner`);
the last one's result is shown as a table (:func:`~.display.display`) and, in Python, kept as
``_sqldf``, as Databricks does. Named parameter markers (``:name``, Databricks Runtime 15.2
and later) are bound from the notebook's widgets, whose values are strings (run parameters
win over defaults); a marker no widget defines is ``[UNBOUND_SQL_PARAMETER]``. The legacy
``${name}`` widget syntax, deprecated since 15.2 (the supported LTS runtimes are later), is
refused with the marker to use instead.

An error names the statement, its place in the cell and the cell, and shows no Python frames
(:func:`~.engine_errors.show_spark_error`).

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .display import display
from .engine_errors import STATEMENT_ATTRIBUTE, UnsupportedByLocalEngine
from .spark_state import active, widgets
from .sql_compat import describe
from .sql_runner import run_statement
from .sql_text import named_markers, split_statements

__all__ = ["run_sql_cell"]

#: set on an error raised by a SQL cell: IPython shows its message without Python frames
SQL_CELL_ATTRIBUTE = "__orch_sql_cell__"
_LEGACY_WIDGET = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*\}")


def _widget_values(widgets_file: str | None) -> dict[str, str]:
    if widgets_file:
        try:
            data = json.loads(Path(widgets_file).read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return {str(k): _text(v) for k, v in data.items()} if isinstance(data, dict) else {}
    util = widgets()
    return dict(util.getAll()) if util is not None else {}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "" if value is None else str(value)


def _unbound(name: str) -> Exception:
    from pyspark.errors import AnalysisException  # type: ignore[import-not-found, unused-ignore]

    return AnalysisException(
        message=(
            f"[UNBOUND_SQL_PARAMETER] Found the unbound parameter: {name}. Please, fix `args` "
            "and provide a mapping of the parameter to either a SQL literal or collection "
            "constructor functions such as `map()`, `array()`, `struct()`."
        )
    )


def _arguments(statement: str, values: dict[str, str], where: str) -> dict[str, str] | None:
    legacy = _LEGACY_WIDGET.search(statement)
    if legacy is not None:
        name = legacy.group(1)
        raise UnsupportedByLocalEngine(
            describe(statement),
            reason=(
                "the ${param} widget syntax is deprecated since Databricks Runtime 15.2, "
                "older than every supported LTS runtime"
            ),
            instead=f"the named parameter marker :{name} (IDENTIFIER(:{name}) for a name)",
            where=where,
        )
    names = named_markers(statement)
    for name in names:
        if name not in values:
            raise _unbound(name)
    return {name: values[name] for name in names} or None


def run_sql_cell(text: str, *, cell: str = "", widgets_file: str | None = None) -> Any:
    """Run the statements of a SQL cell; show and return the last one's result (also the
    notebook's ``_sqldf``). ``cell`` names the cell in errors (``cell 3``);
    ``widgets_file`` holds the widget values of an R notebook, whose widgets live in R."""
    source = active()
    if source is None:
        raise RuntimeError("SQL cells run in a local workspace notebook only")
    session = source.session()
    engine_sql = getattr(type(session), "__orch_engine_sql__", type(session).sql)
    statements = split_statements(text)
    values = _widget_values(widgets_file)
    for number, statement in enumerate(statements, start=1):
        where = cell or "the cell"
        if len(statements) > 1:
            where = f"statement {number} (line {statement.line}) of {where}"
        with _blamed(statement.text, where):
            args = _arguments(statement.text, values, where)
            result = run_statement(
                session, statement.text, engine_sql, args, where=where, analyse=True
            )
            if number == len(statements):
                _publish(result)
    return None


@contextlib.contextmanager
def _blamed(statement: str, where: str) -> Iterator[None]:
    """Errors raised inside name ``statement`` and its place, and show no Python frames."""
    try:
        yield
    except Exception as exc:
        for name, value in ((STATEMENT_ATTRIBUTE, (statement, where)), (SQL_CELL_ATTRIBUTE, True)):
            if name == SQL_CELL_ATTRIBUTE or not hasattr(exc, name):
                with contextlib.suppress(AttributeError):
                    setattr(exc, name, value)
        raise


def _publish(result: Any) -> None:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        shell.user_ns["_sqldf"] = result
    if list(result.columns):
        display(result)
