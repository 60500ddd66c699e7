"""``display`` and ``displayHTML`` of the in-kernel shim.

This module owns the notebook's ``display`` (tables for DataFrames, Spark Connect ones
included, and lists of rows, else the object's rich repr) and ``displayHTML``. ``spark`` and
``sc`` are in ``spark_session``. IPython and pyspark are imported only when used.

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["display", "displayHTML"]

_MAX_DISPLAY_ROWS = 1000


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
    html_text, plain = table
    ipython_display(  # type: ignore[no-untyped-call, unused-ignore]
        {"text/html": html_text, "text/plain": plain}, raw=True
    )


def displayHTML(html: str) -> None:
    """Shows ``html`` as the cell's output."""
    from IPython.display import display as ipython_display

    ipython_display({"text/html": str(html)}, raw=True)  # type: ignore[no-untyped-call, unused-ignore]


def _as_table(obj: Any) -> tuple[str, str] | None:
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


def _pandas_table(frame: Any) -> tuple[str, str]:
    try:
        html_text = frame.to_html(max_rows=_MAX_DISPLAY_ROWS)
    except TypeError:
        html_text = frame.to_html()
    return str(html_text), repr(frame)


def _html_table(columns: list[str], rows: list[list[Any]]) -> tuple[str, str]:
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
    return html_text, "\n".join(lines)
