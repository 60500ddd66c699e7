"""``display`` and ``displayHTML`` of the in-kernel shim.

This module owns the notebook's ``display`` (tables for DataFrames, Spark Connect ones
included, and lists of rows, else the object's rich repr) and ``displayHTML``. A table is
shown as HTML and text, and its columns and rows are kept in the output's metadata under
:data:`TABLE_METADATA` (``{"schema": [{"name", "type"}], "data": [[row], ...]}``, types as
Databricks writes them: ``'"long"'``), from which ``runs/export`` makes Databricks' table
result. ``spark`` and
``sc`` are in ``spark_session``. IPython and pyspark are imported only when used.

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TABLE_METADATA", "display", "displayHTML"]

_MAX_DISPLAY_ROWS = 1000
#: the display output's metadata key that holds a table's schema and rows
TABLE_METADATA = "orchestrator.local.table"


# --------------------------------------------------------------------------- display


def display(obj: Any = None, *args: Any, **kwargs: Any) -> None:
    """Shows a table for a DataFrame or a list of rows, else the object's rich repr.

    pandas-like objects (``to_html``) and pyspark DataFrames (first 1000 rows) become HTML
    tables, as does a list of dicts or of ``Row``s. Extra arguments are accepted and ignored.
    """
    from IPython.display import display as ipython_display

    table = _as_table(obj)
    if table is None:
        ipython_display(obj)  # type: ignore[no-untyped-call, unused-ignore]
        return
    html_text, plain, columns = table
    ipython_display(  # type: ignore[no-untyped-call, unused-ignore]
        {"text/html": html_text, "text/plain": plain},
        raw=True,
        metadata={TABLE_METADATA: columns},
    )


def displayHTML(html: str) -> None:
    """Shows ``html`` as the cell's output."""
    from IPython.display import display as ipython_display

    ipython_display({"text/html": str(html)}, raw=True)  # type: ignore[no-untyped-call, unused-ignore]


Table = tuple[str, str, dict[str, Any]]  # HTML, text, {"schema", "data"}


def _as_table(obj: Any) -> Table | None:
    if _is_spark_dataframe(obj):
        limited = obj.limit(_MAX_DISPLAY_ROWS)
        try:
            return _pandas_table(limited.toPandas())
        except ImportError:  # pyspark needs pandas for toPandas
            rows = [row.asDict() for row in limited.collect()]
            return _html_table(list(obj.columns), [[r.get(c) for c in obj.columns] for r in rows])
    if not isinstance(obj, type) and callable(getattr(obj, "to_html", None)):
        return _pandas_table(obj)
    if isinstance(obj, list | tuple) and obj and all(_is_record(row) for row in obj):
        records = [row.asDict() if hasattr(row, "asDict") else dict(row) for row in obj]
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(map(str, record)))
        rows = [[record.get(c) for c in columns] for record in records[:_MAX_DISPLAY_ROWS]]
        return _html_table(list(columns), rows)
    return None


def _is_spark_dataframe(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("pyspark.") and all(
        hasattr(obj, name) for name in ("limit", "toPandas", "collect", "columns")
    )


def _is_record(row: Any) -> bool:
    return isinstance(row, Mapping) or (callable(getattr(row, "asDict", None)))


def _pandas_table(frame: Any) -> Table:
    try:
        html_text = frame.to_html(max_rows=_MAX_DISPLAY_ROWS)
    except TypeError:
        html_text = frame.to_html()
    return str(html_text), repr(frame), _frame_columns(frame)


def _frame_columns(frame: Any) -> dict[str, Any]:
    """A pandas-like frame's schema and first rows; empty when it does not look like one."""
    try:
        head = frame.head(_MAX_DISPLAY_ROWS)
        names = [str(c) for c in head.columns]
        kinds = [getattr(dtype, "kind", "O") for dtype in head.dtypes]
        rows = [[_cell(v) for v in row] for row in head.itertuples(index=False, name=None)]
    except (AttributeError, TypeError, ValueError):  # not pandas-like: HTML and text only
        return {"schema": [], "data": []}
    types = [_KIND_TYPES.get(kind, "string") for kind in kinds]
    return {"schema": _schema(names, types), "data": rows}


_KIND_TYPES = {"i": "long", "u": "long", "f": "double", "b": "boolean", "M": "timestamp"}


def _schema(names: list[str], types: list[str]) -> list[dict[str, str]]:
    """Databricks' table schema: each type a JSON string (``'"long"'``)."""
    return [{"name": n, "type": f'"{t}"'} for n, t in zip(names, types, strict=True)]


def _cell(value: Any) -> Any:
    """A table value as JSON can hold it: NaN and infinities are null, others text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return _cell(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _value_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "long"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "double"
    return "string"


def _html_table(columns: list[str], rows: list[list[Any]]) -> Table:
    import html

    def cell(value: Any) -> str:
        return "null" if value is None else str(value)

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    html_text = (
        '<table border="1" class="dataframe">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    lines = ["\t".join(map(str, columns))]
    lines += ["\t".join(cell(v) for v in row) for row in rows[:20]]
    if len(rows) > 20:
        lines.append(f"... ({len(rows)} rows)")
    data = [[_cell(v) for v in row] for row in rows]
    types = [_value_type([row[i] for row in data]) for i in range(len(columns))]
    return html_text, "\n".join(lines), {"schema": _schema(columns, types), "data": data}
