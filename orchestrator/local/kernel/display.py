"""``display`` and ``displayHTML`` of the in-kernel shim.

This module owns the notebook's ``display`` (tables for DataFrames, Spark Connect and pandas
ones, and lists of rows, else the object's rich repr; ``df.display()`` is the same, see
:mod:`.spark_hooks`) and ``displayHTML``. A table is shown as HTML and text, and its columns
and rows are kept in the output's metadata under :data:`TABLE_METADATA` (``{"schema":
[{"name", "type"}], "data": [[row], ...]}``, types as Databricks writes them: ``'"long"'``),
from which ``runs/export`` makes Databricks' table result. A table holds at most what
Databricks documents for a results table: 10,000 rows or 2 MB, whichever is lower ("Known
limitations of Databricks notebooks"); a longer one says it was truncated. IPython and
pyspark are imported only when used.

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

__all__ = ["TABLE_METADATA", "display", "displayHTML"]

#: Databricks' limit of a results table: 10,000 rows or 2 MB, whichever is lower
MAX_ROWS = 10_000
MAX_BYTES = 2 * 1024 * 1024
_PLAIN_ROWS = 20
#: the display output's metadata key that holds a table's schema and rows
TABLE_METADATA = "orchestrator.local.table"


# --------------------------------------------------------------------------- display


def display(obj: Any = None, *args: Any, **kwargs: Any) -> None:
    """Shows a table for a DataFrame or a list of rows, else the object's rich repr.

    pandas-like objects (``to_html``) and pyspark DataFrames become HTML tables of their first
    rows (within :data:`MAX_ROWS` and :data:`MAX_BYTES`), as does a list of dicts or of
    ``Row``s. Extra arguments are accepted and ignored.
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
        return _spark_table(obj)
    if not isinstance(obj, type) and callable(getattr(obj, "to_html", None)):
        return _pandas_table(obj)
    if isinstance(obj, list | tuple) and obj and all(_is_record(row) for row in obj):
        records = [row.asDict() if hasattr(row, "asDict") else dict(row) for row in obj]
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(map(str, record)))
        rows = [[record.get(c) for c in columns] for record in records]
        return _html_table(list(columns), rows)
    return None


def _spark_table(frame: Any) -> Table:
    """The first rows of a Spark DataFrame, with its Spark types."""
    columns = [str(c) for c in frame.columns]
    rows = []
    for row in frame.limit(MAX_ROWS + 1).collect():
        if callable(getattr(row, "asDict", None)) and not isinstance(row, tuple):
            record = row.asDict()
            rows.append([record.get(c) for c in columns])
        else:
            rows.append(list(row))
    types = None
    with contextlib.suppress(AttributeError, TypeError):  # not pyspark's: types from the values
        types = [field.dataType.json() for field in frame.schema.fields]
    return _html_table(columns, rows, types=types)


def _limit(rows: list[list[Any]]) -> tuple[list[list[Any]], bool]:
    """The rows a results table keeps (:data:`MAX_ROWS`, :data:`MAX_BYTES`), and whether
    some were left out."""
    import json

    kept: list[list[Any]] = []
    size = 0
    for row in rows[:MAX_ROWS]:
        size += len(json.dumps(row, default=str))
        if size > MAX_BYTES:
            return kept, True
        kept.append(row)
    return kept, len(rows) > MAX_ROWS


def _truncation_note(count: int) -> str:
    return f"Truncated results, showing the first {count:,} rows."


def _is_spark_dataframe(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("pyspark.") and all(
        hasattr(obj, name) for name in ("limit", "toPandas", "collect", "columns")
    )


def _is_record(row: Any) -> bool:
    return isinstance(row, Mapping) or (callable(getattr(row, "asDict", None)))


def _pandas_table(frame: Any) -> Table:
    columns = _frame_columns(frame)
    shown = len(columns["data"]) if columns["schema"] else MAX_ROWS
    if columns["schema"]:  # pandas: the first rows (to_html's max_rows shows head and tail)
        html_text = frame.head(shown).to_html()
    else:
        try:
            html_text = frame.to_html(max_rows=shown)
        except TypeError:
            html_text = frame.to_html()
    plain = repr(frame)
    if columns.pop("truncated", False):
        note = _truncation_note(shown)
        html_text = f"{html_text}<p>{note}</p>"
        plain = f"{plain}\n{note}"
    return str(html_text), plain, columns


def _frame_columns(frame: Any) -> dict[str, Any]:
    """A pandas-like frame's schema and first rows; empty when it does not look like one."""
    try:
        head = frame.head(MAX_ROWS + 1)
        names = [str(c) for c in head.columns]
        kinds = [getattr(dtype, "kind", "O") for dtype in head.dtypes]
        rows = [[_cell(v) for v in row] for row in head.itertuples(index=False, name=None)]
    except (AttributeError, TypeError, ValueError):  # not pandas-like: HTML and text only
        return {"schema": [], "data": []}
    types = [_KIND_TYPES.get(kind, "string") for kind in kinds]
    rows, truncated = _limit(rows)
    return {"schema": _schema(names, types), "data": rows, "truncated": truncated}


_KIND_TYPES = {"i": "long", "u": "long", "f": "double", "b": "boolean", "M": "timestamp"}


def _schema(names: list[str], types: list[str]) -> list[dict[str, str]]:
    """Databricks' table schema: each type a JSON string (``'"long"'``)."""
    return [{"name": n, "type": _json_type(t)} for n, t in zip(names, types, strict=True)]


def _json_type(name: str) -> str:
    """A type as JSON text: ``long`` -> ``'"long"'``; JSON already (Spark's) is kept."""
    return name if name.startswith(('"', "{", "[")) else f'"{name}"'


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


def _html_table(
    columns: list[str], rows: list[list[Any]], *, types: list[str] | None = None
) -> Table:
    import html

    def cell(value: Any) -> str:
        return "null" if value is None else str(value)

    data, truncated = _limit([[_cell(v) for v in row] for row in rows])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>"
        for row in rows[: len(data)]
    )
    html_text = (
        '<table border="1" class="dataframe">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    lines = ["\t".join(map(str, columns))]
    lines += ["\t".join(cell(v) for v in row) for row in rows[:_PLAIN_ROWS]]
    if len(data) > _PLAIN_ROWS:
        lines.append(f"... ({len(data)} rows)")
    if truncated:
        note = _truncation_note(len(data))
        html_text += f"<p>{note}</p>"
        lines.append(note)
    if types is None:
        types = [_value_type([row[i] for row in data]) for i in range(len(columns))]
    return html_text, "\n".join(lines), {"schema": _schema(columns, types), "data": data}
