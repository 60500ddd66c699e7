"""``display``, ``displayHTML``, ``spark`` and ``sc`` of the in-kernel shim.

This module owns the notebook's ``display`` (tables for DataFrames and lists of rows, else the
object's rich repr) and ``displayHTML``, and the lazy ``spark``/``sc`` proxies: a ``local[1]``
SparkSession is created on first use, and needs ``pyspark`` (and Java 17) installed into the
notebook. IPython and pyspark are imported only when used.

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

import os
import posixpath
import sys
from collections.abc import Mapping
from typing import Any

from orchestrator.local.runtime._kernel_common import SparkNotAvailable, _Config

__all__ = ["display", "displayHTML"]

_MAX_DISPLAY_ROWS = 1000
_SPARK_MISSING = (
    "spark is not available in the local workspace: pyspark is not installed. "
    "Install it into the notebook with %pip install pyspark (needs Java 17)"
)


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


# --------------------------------------------------------------------------- spark


class _SparkProxy:
    """``spark``: creates a ``local[1]`` SparkSession on first use, if pyspark is there.

    Names IPython probes for (``_repr_*_``, ``_ipython_*``, dunders) are answered without
    starting Spark, so showing or completing ``spark`` stays cheap.
    """

    def __init__(self, config: _Config) -> None:
        self._config = config
        self._session: Any = None

    def _get_session(self) -> Any:
        if self._session is None:
            import importlib
            import importlib.util

            importlib.invalidate_caches()
            if importlib.util.find_spec("pyspark") is None:
                raise SparkNotAvailable(_SPARK_MISSING)
            from pyspark.sql import SparkSession  # type: ignore[import-not-found, unused-ignore]

            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            name = posixpath.basename(self._config.notebook_path) or "notebook"
            builder = SparkSession.builder.master("local[1]").appName(name)
            settings = {
                "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": "1",
                "spark.sql.session.timeZone": "Etc/UTC",
            }
            if self._config.dbfs_root:
                settings["spark.sql.warehouse.dir"] = posixpath.join(
                    self._config.dbfs_root, "user/hive/warehouse"
                )
            for key, value in settings.items():
                builder = builder.config(key, value)
            self._session = builder.getOrCreate()
        return self._session

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython_")):
            raise AttributeError(name)
        return getattr(self._get_session(), name)

    def __repr__(self) -> str:
        if self._session is None:
            return "<SparkSession (local; created on first use)>"
        return repr(self._session)


class _SparkContextProxy:
    """``sc``: the SparkContext of ``spark``, resolved on first use."""

    def __init__(self, spark: _SparkProxy) -> None:
        self._spark = spark

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython_")):
            raise AttributeError(name)
        return getattr(self._spark.sparkContext, name)

    def __repr__(self) -> str:
        return "<SparkContext (local; created on first use)>"
