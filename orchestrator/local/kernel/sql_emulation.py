"""The statements the kernel does itself, for the ones the engine lacks (:mod:`.sql_compat`).

Each emulation takes the session, the plan's arguments and the engine's own ``sql`` (the
unpatched one), and returns a DataFrame with the columns Databricks documents for the
statement, so ``display``, ``_sqldf`` and ``collect()`` see what they would on Databricks:

* ``DESCRIBE DETAIL`` / ``DESCRIBE HISTORY`` / ``SHOW TBLPROPERTIES`` / ``SHOW PARTITIONS``:
  read from the table's Delta log (:mod:`.delta_log`);
* ``VACUUM``: the files no version within the retention needs are deleted (``DRY RUN``
  lists them), with Databricks' retention check; ``OPTIMIZE``: Databricks' result shape,
  no compaction (the engine writes few files; the data is the same);
* ``RESTORE``: the old version read and written back over the table;
* ``CACHE``/``UNCACHE TABLE``, ``CLEAR CACHE``, ``REFRESH``, ``ANALYZE``: no-ops (the engine
  caches nothing and reads tables fresh), after checking the table exists as Spark does;
  ``CACHE TABLE t AS q`` makes the temporary view ``t``;
* ``SET``/``RESET`` through the session's conf; ``CREATE``/``REMOVE WIDGET`` through
  ``dbutils.widgets``; ``TRUNCATE``, ``CREATE TABLE LIKE``, ``CREATE OR REPLACE TABLE AS``,
  ``DESCRIBE QUERY`` and ``DESCRIBE TABLE t col`` through the engine's own statements.

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .delta_log import DeltaLog, NotADeltaTable, Snapshot, local_path
from .spark_paths import map_path
from .spark_state import SESSION_CONF, widgets
from .sql_compat import TableRef

__all__ = ["EMULATIONS", "NOTES", "Context", "clear_cache", "is_cached"]

#: Delta's default ``delta.deletedFileRetentionDuration``: 7 days
DEFAULT_RETENTION_HOURS = 168.0
_CACHED: set[str] = set()


@dataclass(frozen=True)
class Context:
    """What an emulation works with: the session and the engine's own ``sql``."""

    session: Any
    sql: Callable[[str], Any]


def _analysis_error(message: str) -> Exception:
    from pyspark.errors import AnalysisException  # type: ignore[import-not-found, unused-ignore]

    return AnalysisException(message=message)


def _frame(ctx: Context, rows: Iterable[tuple[Any, ...]], schema: str) -> Any:
    return ctx.session.createDataFrame(list(rows), schema)


def _empty(ctx: Context) -> Any:
    """A result with no columns and no rows, as Spark's commands return."""
    from pyspark.sql.types import StructType  # type: ignore[import-not-found, unused-ignore]

    return ctx.session.createDataFrame([], StructType([]))


def _utc(ms: int) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class _Table:
    location: Path
    name: str | None  # catalog.schema.table, None for a path


def _describe_rows(ctx: Context, name: str) -> dict[str, str]:
    rows = ctx.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
    return {str(r["col_name"]): str(r["data_type"]) for r in rows}


def _full_name(ctx: Context, ref: TableRef, info: dict[str, str]) -> str:
    from .sql_text import tokens

    parts = [t.name for t in tokens(ref.name or "") if t.kind in ("word", "quoted")]
    if len(parts) == 3:
        return ".".join(parts)
    catalog, schema = ctx.sql("SELECT current_catalog(), current_schema()").first()
    schema = info.get("Database") or (parts[0] if len(parts) == 2 else schema)
    return f"{catalog}.{schema}.{parts[-1]}"


def _table(ctx: Context, ref: TableRef | None, statement: str) -> _Table:
    if ref is None:
        raise _analysis_error(f"[PARSE_SYNTAX_ERROR] {statement} needs a table name or a path.")
    if ref.path is not None:
        return _Table(Path(str(map_path(ref.path))), None)
    assert ref.name is not None
    info = _describe_rows(ctx, ref.name)
    if info.get("Type") == "VIEW":
        raise _analysis_error(
            f"[EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE] '{statement}' expects a table but "
            f"{ref.name} is a view."
        )
    location = info.get("Location", "")
    if not location:
        raise _analysis_error(f"[DELTA_TABLE_NOT_FOUND] {ref.name} has no location.")
    return _Table(local_path(location), _full_name(ctx, ref, info))


def _log(table: _Table, statement: str) -> DeltaLog:
    try:
        return DeltaLog(table.location)
    except NotADeltaTable:
        what = table.name or str(table.location)
        raise _analysis_error(
            f"[DELTA_MISSING_DELTA_TABLE] {statement}: {what} is not a Delta table."
        ) from None


def _features(snapshot: Snapshot) -> list[str]:
    protocol = snapshot.protocol
    named = list(protocol.get("readerFeatures") or []) + list(protocol.get("writerFeatures") or [])
    if named:
        return sorted(set(named))
    by_version = {
        2: ["appendOnly", "invariants"],
        3: ["checkConstraints"],
        4: ["changeDataFeed", "generatedColumns"],
        5: ["columnMapping"],
        6: ["identityColumns"],
    }
    writer = int(protocol.get("minWriterVersion") or 0)
    return [f for version, names in by_version.items() if writer >= version for f in names]


_DETAIL_SCHEMA = (
    "format STRING, id STRING, name STRING, description STRING, location STRING, "
    "createdAt TIMESTAMP, lastModified TIMESTAMP, partitionColumns ARRAY<STRING>, "
    "clusteringColumns ARRAY<STRING>, numFiles BIGINT, sizeInBytes BIGINT, "
    "properties MAP<STRING, STRING>, minReaderVersion INT, minWriterVersion INT, "
    "tableFeatures ARRAY<STRING>, statistics MAP<STRING, STRING>"
)


def _detail(ctx: Context, args: dict[str, Any]) -> Any:
    table = _table(ctx, args["target"], "DESCRIBE DETAIL")
    log = _log(table, "DESCRIBE DETAIL")
    snap = log.snapshot()
    meta = snap.metadata
    row: tuple[Any, ...] = (
        "delta",
        meta.get("id"),
        table.name,
        meta.get("description"),
        str(table.location),
        _utc(log.created_ms()),
        _utc(snap.timestamp_ms),
        snap.partition_columns,
        [],
        len(snap.files),
        snap.size_bytes,
        snap.properties,
        int(snap.protocol.get("minReaderVersion") or 1),
        int(snap.protocol.get("minWriterVersion") or 2),
        _features(snap),
        {},
    )
    return _frame(ctx, [row], _DETAIL_SCHEMA)


_HISTORY_SCHEMA = (
    "version BIGINT, timestamp TIMESTAMP, userId STRING, userName STRING, operation STRING, "
    "operationParameters MAP<STRING, STRING>, "
    "job STRUCT<jobId: STRING, jobName: STRING, jobRunId: STRING, runId: STRING, "
    "jobOwnerId: STRING, triggerType: STRING>, notebook STRUCT<notebookId: STRING>, "
    "clusterId STRING, readVersion BIGINT, isolationLevel STRING, isBlindAppend BOOLEAN, "
    "operationMetrics MAP<STRING, STRING>, userMetadata STRING, engineInfo STRING"
)


def _strings(mapping: Any) -> dict[str, str]:
    if not isinstance(mapping, dict):
        return {}
    return {
        str(k): v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        for k, v in mapping.items()
    }


def _history(ctx: Context, args: dict[str, Any]) -> Any:
    table = _table(ctx, args["target"], "DESCRIBE HISTORY")
    rows = []
    for version, info in _log(table, "DESCRIBE HISTORY").history(args.get("limit")):
        job = info.get("job") if isinstance(info.get("job"), dict) else None
        notebook = info.get("notebook") if isinstance(info.get("notebook"), dict) else None
        read_version = info.get("readVersion")
        rows.append(
            (
                version,
                _utc(int(info.get("timestamp") or 0)),
                info.get("userId"),
                info.get("userName"),
                info.get("operation"),
                _strings(info.get("operationParameters")),
                _strings(job) or None,
                _strings(notebook) or None,
                info.get("clusterId"),
                int(read_version) if read_version is not None else None,
                info.get("isolationLevel"),
                info.get("isBlindAppend"),
                _strings(info.get("operationMetrics")),
                info.get("userMetadata"),
                info.get("engineInfo"),
            )
        )
    return _frame(ctx, rows, _HISTORY_SCHEMA)


def _tblproperties(ctx: Context, args: dict[str, Any]) -> Any:
    table = _table(ctx, args["target"], "SHOW TBLPROPERTIES")
    snap = _log(table, "SHOW TBLPROPERTIES").snapshot()
    props = dict(snap.properties)
    props.setdefault("delta.minReaderVersion", str(snap.protocol.get("minReaderVersion") or 1))
    props.setdefault("delta.minWriterVersion", str(snap.protocol.get("minWriterVersion") or 2))
    key = args.get("key")
    if key is not None:
        value = props.get(key, f"Table {table.name} does not have property: {key}")
        return _frame(ctx, [(key, value)], "key STRING, value STRING")
    return _frame(ctx, sorted(props.items()), "key STRING, value STRING")


def _partitions(ctx: Context, args: dict[str, Any]) -> Any:
    table = _table(ctx, args["target"], "SHOW PARTITIONS")
    snap = _log(table, "SHOW PARTITIONS").snapshot()
    columns = snap.partition_columns
    if not columns:
        raise _analysis_error(
            f"[INVALID_PARTITION_OPERATION.PARTITION_SCHEMA_IS_EMPTY] SHOW PARTITIONS: "
            f"{table.name or table.location} is not partitioned."
        )
    values = sorted(
        {tuple(f.get("partitionValues", {}).get(c) for c in columns) for f in snap.files.values()},
        key=lambda row: tuple("" if v is None else str(v) for v in row),
    )
    schema = ", ".join(f"`{c}` STRING" for c in columns)
    frame = _frame(ctx, values, schema)
    if table.name is not None:
        types = {f.name: f.dataType for f in ctx.session.table(table.name).schema.fields}
        frame = frame.select(*[frame[c].cast(types[c]).alias(c) for c in columns if c in types])
    return frame


# --------------------------------------------------------------------------- maintenance


def _retention_hours(ctx: Context, snap: Snapshot, hours: float | None) -> float:
    configured = snap.properties.get("delta.deletedFileRetentionDuration", "")
    default = DEFAULT_RETENTION_HOURS
    words = configured.lower().replace("interval", "").split()
    if len(words) == 2 and words[0].replace(".", "", 1).isdigit():
        unit = {"day": 24.0, "days": 24.0, "hour": 1.0, "hours": 1.0, "week": 168.0, "weeks": 168.0}
        default = float(words[0]) * unit.get(words[1], 24.0)
    if hours is None:
        return default
    check = str(
        ctx.session.conf.get("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    )
    if hours < default and check.lower() != "false":
        from pyspark.errors import IllegalArgumentException  # type: ignore[import-not-found, unused-ignore]

        raise IllegalArgumentException(
            message=(
                "requirement failed: Are you sure you would like to vacuum files with such a "
                "low retention period? If you have writers that are currently writing to this "
                "table, there is a risk that you may corrupt the state of your Delta table.\n"
                "If you are certain that there are no operations being performed on this "
                "table, such as insert/upsert/delete/optimize, then you may turn off this "
                "check by setting:\nspark.databricks.delta.retentionDurationCheck.enabled = "
                f'false\n\nIf you are not sure, please use a value not less than "{default:g} '
                'hours".'
            )
        )
    return hours


def _vacuum(ctx: Context, args: dict[str, Any]) -> Any:
    table = _table(ctx, args["target"], "VACUUM")
    log = _log(table, "VACUUM")
    hours = _retention_hours(ctx, log.snapshot(), args.get("hours"))
    cutoff = int(time.time() * 1000 - hours * 3600 * 1000)
    files = log.unreferenced(cutoff)
    if args.get("dry_run"):
        return _frame(ctx, [(str(f),) for f in files[:1000]], "path STRING")
    for file in files:
        file.unlink(missing_ok=True)
    return _frame(ctx, [(str(table.location),)], "path STRING")


_FILE_STATS = "STRUCT<min: BIGINT, max: BIGINT, avg: DOUBLE, totalFiles: BIGINT, totalSize: BIGINT>"
_OPTIMIZE_SCHEMA = (
    "path STRING, metrics STRUCT<numFilesAdded: BIGINT, numFilesRemoved: BIGINT, "
    f"filesAdded: {_FILE_STATS}, filesRemoved: {_FILE_STATS}, partitionsOptimized: BIGINT, "
    "numBatches: BIGINT, totalConsideredFiles: BIGINT, totalFilesSkipped: BIGINT, "
    "preserveInsertionOrder: BOOLEAN>"
)


def _compacted(location: str) -> dict[str, Any] | None:
    """``OPTIMIZE``'s bin-packing through delta-rs (``deltalake``, the runtime's Delta
    binding); its metrics, in Databricks' result shape. None when the binding is missing."""
    try:
        from deltalake import DeltaTable
    except ImportError:
        return None
    done = DeltaTable(location).optimize.compact()

    def stats(value: Any) -> dict[str, Any]:
        item = value if isinstance(value, dict) else {}
        return {
            "min": int(item["min"]) if item.get("min") is not None else None,
            "max": int(item["max"]) if item.get("max") is not None else None,
            "avg": float(item.get("avg") or 0.0),
            "totalFiles": int(item.get("totalFiles") or 0),
            "totalSize": int(item.get("totalSize") or 0),
        }

    return {
        "numFilesAdded": int(done.get("numFilesAdded") or 0),
        "numFilesRemoved": int(done.get("numFilesRemoved") or 0),
        "filesAdded": stats(done.get("filesAdded")),
        "filesRemoved": stats(done.get("filesRemoved")),
        "partitionsOptimized": int(done.get("partitionsOptimized") or 0),
        "numBatches": int(done.get("numBatches") or 0),
        "totalConsideredFiles": int(done.get("totalConsideredFiles") or 0),
        "totalFilesSkipped": int(done.get("totalFilesSkipped") or 0),
        "preserveInsertionOrder": bool(done.get("preserveInsertionOrder", True)),
    }


def _optimize(ctx: Context, args: dict[str, Any]) -> Any:
    table = _table(ctx, args["target"], "OPTIMIZE")
    snap = _log(table, "OPTIMIZE").snapshot()
    compacted = _compacted(str(table.location))
    if compacted is not None:
        return _frame(ctx, [(str(table.location), compacted)], _OPTIMIZE_SCHEMA)
    none = {"min": None, "max": None, "avg": 0.0, "totalFiles": 0, "totalSize": 0}
    metrics = {
        "numFilesAdded": 0,
        "numFilesRemoved": 0,
        "filesAdded": none,
        "filesRemoved": none,
        "partitionsOptimized": 0,
        "numBatches": 0,
        "totalConsideredFiles": len(snap.files),
        "totalFilesSkipped": len(snap.files),
        "preserveInsertionOrder": True,
    }
    return _frame(ctx, [(str(table.location), metrics)], _OPTIMIZE_SCHEMA)


def _restore(ctx: Context, args: dict[str, Any]) -> Any:
    target: TableRef | None = args["target"]
    table = _table(ctx, target, "RESTORE")
    log = _log(table, "RESTORE")
    before = log.snapshot()
    option = "versionAsOf" if args["by"] == "version" else "timestampAsOf"
    reader = ctx.session.read.format("delta").option(option, args["value"])
    old = reader.table(table.name) if table.name else reader.load(str(table.location))
    old = ctx.session.createDataFrame(old.toPandas(), old.schema)  # read before overwriting it
    writer = old.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if table.name is not None:
        writer.saveAsTable(table.name)
    else:
        writer.save(str(table.location))
    after = log.snapshot()
    removed = [f for p, f in before.files.items() if p not in after.files]
    restored = [f for p, f in after.files.items() if p not in before.files]
    row = (
        after.size_bytes,
        len(after.files),
        len(removed),
        len(restored),
        sum(int(f.get("size") or 0) for f in removed),
        sum(int(f.get("size") or 0) for f in restored),
    )
    schema = (
        "table_size_after_restore BIGINT, num_of_files_after_restore BIGINT, "
        "num_removed_files BIGINT, num_restored_files BIGINT, removed_files_size BIGINT, "
        "restored_files_size BIGINT"
    )
    return _frame(ctx, [row], schema)


# --------------------------------------------------------------------------- catalog


def _check_table(ctx: Context, ref: TableRef | None) -> str:
    if ref is None or ref.name is None:
        raise _analysis_error("[PARSE_SYNTAX_ERROR] a table name is expected.")
    ctx.session.table(ref.name).schema  # noqa: B018 - raises as Spark does when it is missing
    return ref.name


def _cache(ctx: Context, args: dict[str, Any]) -> Any:
    ref: TableRef | None = args["target"]
    if args.get("query"):
        assert ref is not None and ref.name is not None
        ctx.sql(f"CREATE OR REPLACE TEMPORARY VIEW {ref.name} AS {args['query']}")
        _CACHED.add(ref.name.lower())
        return _empty(ctx)
    _CACHED.add(_check_table(ctx, ref).lower())
    return _empty(ctx)


def _uncache(ctx: Context, args: dict[str, Any]) -> Any:
    ref: TableRef | None = args["target"]
    if not args.get("if_exists"):
        _check_table(ctx, ref)
    if ref is not None and ref.name is not None:
        _CACHED.discard(ref.name.lower())
    return _empty(ctx)


def is_cached(name: str) -> bool:
    return name.lower() in _CACHED


def clear_cache() -> None:
    _CACHED.clear()


def _refresh(ctx: Context, args: dict[str, Any]) -> Any:
    if args.get("target") is not None:
        _check_table(ctx, args["target"])
    return _empty(ctx)


def _noop(ctx: Context, args: dict[str, Any]) -> Any:
    if args.get("clear"):
        clear_cache()
    return _empty(ctx)


def _set(ctx: Context, args: dict[str, Any]) -> Any:
    key, value = args.get("key"), args.get("value")
    conf = ctx.session.conf
    if key is None:
        return _frame(ctx, sorted(conf.getAll.items()), "key STRING, value STRING")
    if value is None:
        return _frame(ctx, [(key, conf.get(key, "<undefined>"))], "key STRING, value STRING")
    conf.set(key, value)
    return _frame(ctx, [(key, value)], "key STRING, value STRING")


def _reset(ctx: Context, args: dict[str, Any]) -> Any:
    conf = ctx.session.conf
    keys = [args["key"]] if args.get("key") else list(conf.getAll)
    for key in keys:
        if key in SESSION_CONF:
            conf.set(key, SESSION_CONF[key])
        elif not key.startswith("spark.sql.warehouse"):
            conf.unset(key)
    return _empty(ctx)


def _truncate(ctx: Context, args: dict[str, Any]) -> Any:
    ctx.sql(f"DELETE FROM {_check_table(ctx, args['target'])}").collect()  # noqa: S608
    return _empty(ctx)


def _create_like(ctx: Context, args: dict[str, Any]) -> Any:
    target: TableRef = args["target"]
    source = _check_table(ctx, args["source"])
    assert target.name is not None
    if ctx.session.catalog.tableExists(target.name):
        if args.get("if_not_exists"):
            return _empty(ctx)
        raise _analysis_error(
            f"[TABLE_OR_VIEW_ALREADY_EXISTS] Cannot create table or view {target.name} "
            "because it already exists."
        )
    table = _table(ctx, args["source"], "CREATE TABLE LIKE")
    partitions = _log(table, "CREATE TABLE LIKE").snapshot().partition_columns
    writer = ctx.session.table(source).limit(0).write.format("delta")
    if partitions:
        writer = writer.partitionBy(*partitions)
    writer.saveAsTable(target.name)
    return _empty(ctx)


def _replace_table(ctx: Context, args: dict[str, Any]) -> Any:
    target: TableRef = args["target"]
    assert target.name is not None
    frame = ctx.sql(args["query"])
    writer = frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if args.get("partitions"):
        writer = writer.partitionBy(*args["partitions"])
    writer.saveAsTable(target.name)
    return _empty(ctx)


def _describe_column(ctx: Context, args: dict[str, Any]) -> Any:
    name = _check_table(ctx, args["target"])
    wanted = str(args["column"]).lower()
    for row in ctx.sql(f"DESCRIBE TABLE {name}").collect():
        if str(row["col_name"]).lower() == wanted:
            rows = [
                ("col_name", row["col_name"]),
                ("data_type", row["data_type"]),
                ("comment", row["comment"] if row["comment"] is not None else "NULL"),
            ]
            return _frame(ctx, rows, "info_name STRING, info_value STRING")
    raise _analysis_error(
        f"[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column with name `{args['column']}` cannot be "
        f"resolved in {name}."
    )


def _describe_query(ctx: Context, args: dict[str, Any]) -> Any:
    schema = ctx.sql(args["query"]).schema
    rows = [(f.name, f.dataType.simpleString(), None) for f in schema.fields]
    return _frame(ctx, rows, "col_name STRING, data_type STRING, comment STRING")


def _widget_util() -> Any:
    util = widgets()
    if util is None:
        raise RuntimeError("widgets are only available in a notebook")
    return util


def _create_widget(ctx: Context, args: dict[str, Any]) -> Any:
    util = _widget_util()
    kind, name, default = args["kind"], args["name"], args["default"]
    if kind == "text":
        util.text(name, default)
        return _empty(ctx)
    choices: list[str] = []
    if args.get("choices"):
        choices = [str(row[0]) for row in ctx.sql(args["choices"]).collect()]
    getattr(util, kind)(name, default, choices)
    return _empty(ctx)


def _remove_widget(ctx: Context, args: dict[str, Any]) -> Any:
    _widget_util().remove(args["name"])
    return _empty(ctx)


#: how each emulation stands in for the statement, as the compatibility table says it
NOTES = {
    "detail": "read from the Delta log",
    "history": "read from the Delta log",
    "tblproperties": "read from the Delta log",
    "partitions": "read from the Delta log",
    "vacuum": "unreferenced files past the retention deleted, found from the Delta log",
    "optimize": "compacted by delta-rs (deltalake), Databricks' result",
    "restore": "the old version read and written back",
    "cache": "a no-op after checking the table (the engine caches nothing)",
    "uncache": "a no-op after checking the table",
    "refresh": "a no-op after checking the table (tables are read fresh)",
    "noop": "a no-op",
    "set": "through the session's conf",
    "reset": "through the session's conf",
    "truncate": "DELETE FROM the table",
    "create_like": "the source's schema and partitioning, no rows",
    "replace_table": "an overwrite with the new schema (overwriteSchema)",
    "describe_column": "from DESCRIBE TABLE",
    "describe_query": "from the query's schema",
    "create_widget": "dbutils.widgets",
    "remove_widget": "dbutils.widgets",
}

EMULATIONS: dict[str, Callable[[Context, dict[str, Any]], Any]] = {
    "detail": _detail,
    "history": _history,
    "tblproperties": _tblproperties,
    "partitions": _partitions,
    "vacuum": _vacuum,
    "optimize": _optimize,
    "restore": _restore,
    "cache": _cache,
    "uncache": _uncache,
    "refresh": _refresh,
    "noop": _noop,
    "set": _set,
    "reset": _reset,
    "truncate": _truncate,
    "create_like": _create_like,
    "replace_table": _replace_table,
    "describe_column": _describe_column,
    "describe_query": _describe_query,
    "create_widget": _create_widget,
    "remove_widget": _remove_widget,
}
