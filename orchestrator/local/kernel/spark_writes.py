"""Table writes as Spark makes them: save modes, ``replaceWhere``, and formats the engine lacks.

This module owns the patches of Spark Connect's ``DataFrameWriter`` (and ``writeTo``'s
``DataFrameWriterV2``) that make writes behave as on Databricks where the engine differs:

* ``saveAsTable`` first registers the tables other sessions of the cluster created (the
  session must know the table to append to it or overwrite it, not make a second one), and
  with the default mode (``errorifexists``) fails on an existing table with Spark's
  ``[TABLE_OR_VIEW_ALREADY_EXISTS]``; ``append``, ``overwrite`` and ``ignore`` are the
  engine's, which match Delta (``overwrite`` keeps the schema unless ``overwriteSchema``);
* ``option("replaceWhere", cond)`` with ``overwrite``: the engine would replace the whole
  table, so the kernel deletes the matching rows and appends (emulated);
* Avro and ORC writes, ``overwritePartitions()``: refused with what to use instead.

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .engine_errors import UnsupportedByLocalEngine
from .spark_state import active
from .sql_compat import HIVE_CATALOG, LEGACY_CATALOG
from .sql_events import record
from .sql_text import rename_catalog

__all__ = ["patch_writes", "table_name"]

_NO_WRITER = {
    "avro": "Parquet or Delta (df.write.format('delta'))",
    "orc": "Parquet or Delta (df.write.format('delta'))",
}


def table_name(name: str) -> str:
    """A table name as the engine must read it: the legacy ``spark_catalog`` is
    ``hive_metastore`` on a Unity Catalog workspace."""
    renamed = rename_catalog(name, LEGACY_CATALOG, HIVE_CATALOG)
    if renamed != name:
        record("translated", f"{LEGACY_CATALOG} -> {HIVE_CATALOG}, as on Unity Catalog")
    return renamed


def _sync() -> None:
    source = active()
    if source is not None:
        source.mark_used()
        source.sync_tables()


def _exists(session: Any, name: str) -> bool:
    try:
        return bool(session.catalog.tableExists(name))
    except Exception:  # noqa: BLE001 - an unknown catalog or schema: it does not exist
        return False


def _already_exists(name: str) -> Exception:
    from pyspark.errors import AnalysisException  # type: ignore[import-not-found, unused-ignore]

    quoted = ".".join(f"`{part}`" for part in name.split("."))
    return AnalysisException(
        message=(
            f"[TABLE_OR_VIEW_ALREADY_EXISTS] Cannot create table or view {quoted} because it "
            "already exists.\nChoose a different name, drop or replace the existing object, "
            "or add the IF NOT EXISTS clause to tolerate pre-existing objects."
        )
    )


def _refuse_format(source: str | None, call: str) -> None:
    fmt = (source or "").lower()
    if fmt in _NO_WRITER:
        raise UnsupportedByLocalEngine(
            f"df.write.format('{fmt}').{call}",
            reason=f"the engine has no {fmt.upper()} writer",
            instead=_NO_WRITER[fmt],
        )


def _replace_where(writer: Any, target: str) -> bool:
    """Overwrite with ``replaceWhere``: delete the matching rows, then append (the engine
    would drop the condition and replace everything). True when done here."""
    options = {k.lower(): v for k, v in writer._write.options.items()}
    condition = options.get("replacewhere")
    if not condition or str(writer._write.mode or "").lower() != "overwrite":
        return False
    from pyspark.errors import AnalysisException  # type: ignore[import-not-found, unused-ignore]
    from pyspark.sql import functions as F  # type: ignore[import-not-found, unused-ignore]
    from pyspark.sql.connect.dataframe import DataFrame  # type: ignore[import-not-found, unused-ignore]

    session = writer._spark
    frame = DataFrame(writer._df, session)
    outside = frame.where(~F.expr(condition)).limit(1).count()
    if outside:
        raise AnalysisException(
            message=(
                "[DELTA_REPLACE_WHERE_MISMATCH] Written data does not conform to partial table "
                f"overwrite condition or constraint '{condition}'."
            )
        )
    session.sql(f"DELETE FROM {target} WHERE {condition}").collect()  # noqa: S608 - the user's
    for key in list(writer._write.options):
        if key.lower() == "replacewhere":
            del writer._write.options[key]
    writer.mode("append")
    record("emulated", "replaceWhere (DELETE matching rows, then append)")
    return True


def _save_as_table(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def saveAsTable(self: Any, name: str, format: Any = None, mode: Any = None, **kw: Any) -> Any:
        name = table_name(name)
        if mode is not None:
            self.mode(mode)
        if format is not None:
            self.format(format)
        _refuse_format(self._write.source, "saveAsTable()")
        _sync()
        session = self._spark
        save_mode = str(self._write.mode or "errorifexists").lower()
        exists = _exists(session, name)
        if save_mode in ("error", "errorifexists", "default") and exists:
            record("emulated", "an existing table is Spark's TABLE_OR_VIEW_ALREADY_EXISTS")
            raise _already_exists(name)
        if exists:
            _replace_where(self, name)
        return original(self, name, **kw)

    return saveAsTable


def _save(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def save(self: Any, path: Any = None, format: Any = None, mode: Any = None, **kw: Any) -> Any:
        if format is not None:
            self.format(format)
        if mode is not None:
            self.mode(mode)
        _refuse_format(self._write.source, "save()")
        source = active()
        if source is not None:
            source.mark_used()
        fmt = str(self._write.source or "delta").lower()
        if path is not None and fmt == "delta":
            from .spark_paths import map_path

            local = str(map_path(path))
            import os

            if os.path.isdir(os.path.join(local, "_delta_log")):  # noqa: PTH112, PTH118
                _replace_where(self, "delta.`" + local.replace("`", "``") + "`")
        return original(self, path, **kw)

    return save


def _insert_into(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def insertInto(self: Any, tableName: str, overwrite: Any = None) -> Any:
        _sync()
        return original(self, table_name(tableName), overwrite)

    return insertInto


def _overwrite_partitions(self: Any) -> None:
    raise UnsupportedByLocalEngine(
        "df.writeTo(t).overwritePartitions()",
        reason="the engine has no dynamic partition overwrite for Delta",
        instead="df.write.mode('overwrite').option('replaceWhere', '<partition condition>')",
    )


def _write_to(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def writeTo(self: Any, table: str) -> Any:
        _sync()
        return original(self, table_name(table))

    return writeTo


def patch_writes() -> None:
    """Patch Spark Connect's writers (once)."""
    from pyspark.sql.connect import readwriter  # type: ignore[import-not-found, unused-ignore]
    from pyspark.sql.connect.dataframe import DataFrame  # type: ignore[import-not-found, unused-ignore]

    writer = readwriter.DataFrameWriter
    if getattr(writer, "__orch_writes__", False):
        return
    patches: list[tuple[Any, str, Any]] = [
        (writer, "saveAsTable", _save_as_table(writer.saveAsTable)),
        (writer, "save", _save(writer.save)),
        (writer, "insertInto", _insert_into(writer.insertInto)),
        (readwriter.DataFrameWriterV2, "overwritePartitions", _overwrite_partitions),
        (DataFrame, "writeTo", _write_to(DataFrame.writeTo)),
        (writer, "__orch_writes__", True),
    ]
    for cls, name, value in patches:  # classes of pyspark's
        setattr(cls, name, value)
