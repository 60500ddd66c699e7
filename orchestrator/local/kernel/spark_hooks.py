"""pyspark as a Databricks notebook finds it: the patches of Spark Connect's client classes.

On Databricks, ``spark`` exists before the first cell: ``SparkSession.getActiveSession()``
and ``SparkSession.builder.getOrCreate()`` return it, ``df.display()`` shows a table, and
SQL goes through Databricks' own dialect. The local workspace creates its session on first use
and its engine is Sail, so this module patches the client:

* before any session exists (as soon as pyspark is imported, through an import hook, or at
  once if a pre-forked kernel imported it already): ``getActiveSession``/``active`` and both
  builders' ``getOrCreate`` give the cluster's session (creating it); Spark errors get the
  IPython handler of :mod:`.engine_errors`; pyspark's gRPC logger is turned off again;
* when the session is created (:func:`patch_session_classes`): ``spark.sql`` goes through the
  compatibility layer (:mod:`.sql_runner`); ``spark.table``/``spark.read.table`` and
  ``spark.catalog`` read ``spark_catalog`` as ``hive_metastore`` and look a table up again
  after registering the cluster's tables; ``spark.catalog``'s cache methods, which the
  engine lacks, are emulated; ``df.display()`` is ``display(df)``; ``df.rdd`` fails as on
  Databricks' Spark Connect compute; reader and writer paths, CSV headers and table writes
  are patched by :mod:`.spark_paths` and :mod:`.spark_writes`.

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from .engine_errors import jvm_attribute_error, quiet_connect_logging
from .spark_paths import patch_paths
from .spark_state import active
from .spark_writes import patch_writes, table_name
from .sql_events import record
from .sql_runner import run_statement, with_table_retry

__all__ = ["install_hooks", "patch_session_classes"]

_ERROR_HANDLER: list[Callable[[tuple[type[BaseException], ...]], None]] = []


def _cluster_session() -> Any:
    source = active()
    return source.session() if source is not None else None


# --------------------------------------------------------------------------- before a session


def _patch_connect_session(module: ModuleType) -> None:
    cls = module.SparkSession
    if getattr(cls, "__orch_early__", False):
        return
    original = cls.getActiveSession.__func__

    @functools.wraps(original)
    def getActiveSession(klass: Any) -> Any:
        found = original(klass)
        return found if found is not None else _cluster_session()

    cls.getActiveSession = classmethod(getActiveSession)
    setattr(cls, "__orch_early__", True)  # noqa: B010 - a class of pyspark's


def _patch_classic_builder(module: ModuleType) -> None:
    builder = module.SparkSession.Builder
    if getattr(builder, "__orch_early__", False):
        return

    def getOrCreate(self: Any) -> Any:
        """The cluster's session, as on Databricks: a notebook never makes its own. Runtime
        SQL confs given to the builder are set on it; the others are ignored."""
        session = _cluster_session()
        if session is None:
            raise RuntimeError("no Spark session: this is not a local workspace notebook")
        for key, value in dict(getattr(self, "_options", {})).items():
            if str(key).startswith("spark.sql.") and key != "spark.sql.warehouse.dir":
                with contextlib.suppress(Exception):  # a static conf: Spark ignores it too
                    session.conf.set(key, value)
        return session

    builder.getOrCreate = getOrCreate
    setattr(builder, "__orch_early__", True)  # noqa: B010 - a class of pyspark's


def _patch_errors(module: ModuleType) -> None:
    base = getattr(module, "PySparkException", None)
    if base is not None:
        for register in _ERROR_HANDLER:
            register((base,))


def _quiet(module: ModuleType) -> None:
    quiet_connect_logging()


_EARLY: dict[str, Callable[[ModuleType], None]] = {
    "pyspark.sql.connect.session": _patch_connect_session,
    "pyspark.sql.session": _patch_classic_builder,
    "pyspark.errors": _patch_errors,
    "pyspark.sql.connect.logging": _quiet,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs a patch right after one of :data:`_EARLY`'s modules is executed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = _EARLY.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return None
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install_hooks(
    register_error_handler: Callable[[tuple[type[BaseException], ...]], None],
) -> None:
    """Patch what pyspark has already imported, and the rest as it is imported.
    ``register_error_handler(types)`` makes IPython show those errors with
    :func:`~.engine_errors.show_spark_error`."""
    _ERROR_HANDLER[:] = [register_error_handler]
    for name, patch in _EARLY.items():
        module = sys.modules.get(name)
        if module is not None:
            patch(module)
    if not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())


# --------------------------------------------------------------------------- with a session


def _sql(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def sql(self: Any, sqlQuery: str, args: Any = None, **kwargs: Any) -> Any:
        if kwargs:  # str.format-style arguments (DataFrames as views): the engine's own path
            return original(self, sqlQuery, args, **kwargs)
        return run_statement(self, sqlQuery, original, args)

    return sql


def _by_name(original: Callable[..., Any], *, sync: bool = True) -> Callable[..., Any]:
    """A method whose first argument is a table name: ``spark_catalog`` read as
    ``hive_metastore``, looked up again after registering the cluster's tables."""

    @functools.wraps(original)
    def method(self: Any, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(name, str):
            name = table_name(name)
        source = active()
        if source is not None:
            source.mark_used()
            source.sync_tables()
        if not sync:
            return original(self, name, *args, **kwargs)
        return with_table_retry(lambda: original(self, name, *args, **kwargs))

    return method


def _patch_catalog(catalog: Any) -> None:
    from .sql_emulation import clear_cache, is_cached

    for name in ("tableExists", "getTable", "listColumns", "refreshTable", "recoverPartitions"):
        if hasattr(catalog, name):
            setattr(catalog, name, _by_name(getattr(catalog, name)))

    def cacheTable(self: Any, tableName: str, storageLevel: Any = None) -> None:
        self._sparkSession.sql(f"CACHE TABLE {tableName}")

    def uncacheTable(self: Any, tableName: str) -> None:
        self._sparkSession.sql(f"UNCACHE TABLE {tableName}")

    def isCached(self: Any, tableName: str) -> bool:
        record("emulated", "spark.catalog.isCached")
        self._sparkSession.table(tableName).schema  # noqa: B018 - raises for a missing table
        return is_cached(table_name(tableName))

    def clearCache(self: Any) -> None:
        record("emulated", "spark.catalog.clearCache")
        clear_cache()

    def refreshByPath(self: Any, path: str) -> None:
        record("emulated", "spark.catalog.refreshByPath")

    catalog.cacheTable = cacheTable
    catalog.uncacheTable = uncacheTable
    catalog.isCached = isCached
    catalog.clearCache = clearCache
    catalog.refreshByPath = refreshByPath
    for name in ("dropTempView", "dropGlobalTempView"):
        catalog_drop = getattr(catalog, name)
        setattr(catalog, name, _drop_view(catalog_drop))


def _drop_view(original: Callable[..., Any]) -> Callable[..., Any]:
    """Spark answers False for a view that does not exist; the engine raises."""

    @functools.wraps(original)
    def drop(self: Any, viewName: str) -> bool:
        try:
            return bool(original(self, viewName))
        except Exception as exc:
            if "not found" in str(exc).lower():
                return False
            raise

    return drop


def _display_method(self: Any, *args: Any, **kwargs: Any) -> None:
    """``df.display()``: Databricks' ``display(df)``."""
    from .display import display

    display(self, *args, **kwargs)


def patch_session_classes() -> None:
    """Patch the Spark Connect classes a session uses (once), before its first call."""
    from pyspark.sql.connect import catalog, readwriter, session  # type: ignore[import-not-found, unused-ignore]
    from pyspark.sql.connect.dataframe import DataFrame  # type: ignore[import-not-found, unused-ignore]

    quiet_connect_logging()
    for name, patch in _EARLY.items():
        module = sys.modules.get(name)
        if module is not None:
            patch(module)
    patch_paths()
    patch_writes()
    cls = session.SparkSession
    if getattr(cls, "__orch_patched__", False):
        return
    original_getattr = DataFrame.__getattr__

    def __getattr__(self: Any, name: str) -> Any:
        if name == "rdd":  # an AttributeError from a property would land here anyway
            raise jvm_attribute_error("rdd")
        return original_getattr(self, name)

    reader = readwriter.DataFrameReader
    patches: list[tuple[Any, str, Any]] = [
        (cls, "__orch_engine_sql__", cls.sql),
        (cls, "sql", _sql(cls.sql)),
        (cls, "table", _by_name(cls.table)),
        (reader, "table", _by_name(reader.table)),
        (DataFrame, "display", _display_method),
        (DataFrame, "__getattr__", __getattr__),
        (cls, "__orch_patched__", True),
    ]
    for owner, name, value in patches:  # classes of pyspark's
        setattr(owner, name, value)
    _patch_catalog(catalog.Catalog)
