"""``spark`` and ``sc`` of the in-kernel shim: a Spark Connect session on the cluster's engine.

This module owns :class:`SparkProxy` (``spark``), :class:`SparkContextProxy` (``sc``), the
mapping of Spark paths to the local DBFS and workspace folders, and the hook that keeps the
table registry (:mod:`.spark_catalog`) up to date after each cell.

* ``spark`` is created on first use: its own Spark Connect session (own temp views and confs)
  on the engine of the task's cluster (``$ORCH_SPARK_ENDPOINT_FILE``, waited for while the
  engine starts), with Delta as the default table format, the warehouse under the state dir,
  catalog ``main`` and schema ``default`` as on a Unity Catalog workspace, and the session
  time zone UTC. Without the engine, ``pyspark`` classic (with Java 17) gives a ``local[1]``
  session as before; without either, a clear error with the install hint.
* ``sc``, ``spark.sparkContext`` and ``df.rdd`` fail as on Databricks' standard-access and
  serverless compute (``JVM_ATTRIBUTE_NOT_SUPPORTED``), plus one line on what to use instead.
* Paths given to ``spark.read``/``df.write`` follow ``dbutils.fs``: ``dbfs:/x``, ``/x``,
  ``/dbfs/x`` and ``/Volumes/...`` are in the local DBFS root, ``/Workspace/x`` in the
  workspace root, ``file:/x`` is ``/x``; other URLs pass through. Paths inside SQL text are
  not mapped.

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import posixpath
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import SparkNotAvailable, _Config
from .spark_catalog import Registry

__all__ = ["SparkContextProxy", "SparkProxy"]

_INSTALL_HINT = "pip install 'orchestrator[spark]'"
_ENGINE_WAIT_SECONDS = 30.0
_NO_JVM_HINT = (
    "The local workspace runs notebooks like Databricks standard-access and serverless "
    "compute (Spark Connect): there is no SparkContext or RDD API. Use DataFrame APIs instead "
    "(spark.createDataFrame, spark.range, df.mapInPandas, spark.sparkContext.* -> spark.conf "
    "or spark.catalog)."
)
_SESSION_CONF = {
    "spark.sql.sources.default": "delta",
    "spark.sql.session.timeZone": "Etc/UTC",
}
_PATHS: dict[str, Callable[[str], str]] = {}
_DEPTH: dict[int, int] = {}  # nesting of wrapped reader/writer calls (notebook code: one thread)


def jvm_attribute_error(attr: str) -> Exception:
    """The error Databricks' Spark Connect compute raises for ``attr``, plus a hint."""
    try:
        from pyspark.errors import PySparkAttributeError  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return SparkNotAvailable(f"{attr} is not available: {_NO_JVM_HINT}")

    class JvmAttributeNotSupported(PySparkAttributeError):  # type: ignore[misc, unused-ignore]
        def __str__(self) -> str:
            return f"{super().__str__()}\n{_NO_JVM_HINT}"

    return JvmAttributeNotSupported(
        errorClass="JVM_ATTRIBUTE_NOT_SUPPORTED", messageParameters={"attr_name": attr}
    )


class SparkProxy:
    """``spark``: a Spark Connect session on the cluster's engine, created on first use.

    Names IPython probes for (``_repr_*_``, ``_ipython_*``, dunders) are answered without
    creating the session, so showing or completing ``spark`` stays cheap.
    """

    def __init__(self, config: _Config, map_path: Callable[[str], str]) -> None:
        self._config = config
        self._session: Any = None
        self._dirty = False
        self._registry = Registry(os.environ.get("ORCH_SPARK_CATALOG", ""))
        _PATHS["map"] = map_path

    @property
    def connected(self) -> bool:
        return self._session is not None

    def _get_session(self) -> Any:
        if self._session is None:
            importlib.invalidate_caches()
            endpoint_file = os.environ.get("ORCH_SPARK_ENDPOINT_FILE", "")
            if endpoint_file and importlib.util.find_spec("pysail") is not None:
                self._session = self._connect(Path(endpoint_file))
            else:
                self._session = self._classic_session()
        self._dirty = True
        return self._session

    def _connect(self, endpoint_file: Path) -> Any:
        if importlib.util.find_spec("pyspark") is None:
            raise SparkNotAvailable(f"spark needs the Spark Connect client: {_INSTALL_HINT}")
        url = _wait_endpoint(endpoint_file)
        _patch_pyspark()
        from pyspark.sql import SparkSession  # type: ignore[import-not-found, unused-ignore]

        builder = SparkSession.builder.remote(url)
        conf = dict(_SESSION_CONF)
        warehouse = os.environ.get("ORCH_SPARK_WAREHOUSE", "")
        if warehouse:
            conf["spark.sql.warehouse.dir"] = warehouse
        for key, value in conf.items():
            builder = builder.config(key, value)
        session = builder.create()  # a new session per kernel, never a shared default
        self._registry.sync_in(session)
        return session

    def _classic_session(self) -> Any:
        if importlib.util.find_spec("pyspark") is None:
            raise SparkNotAvailable(
                f"spark is not available in the local workspace: {_INSTALL_HINT}"
            )
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
        return builder.getOrCreate()

    def after_cell(self, *args: Any) -> None:
        """IPython ``post_run_cell``: record the tables this session created or dropped."""
        if self._session is not None and self._dirty:
            self._dirty = False
            if _is_connect(self._session):
                self._registry.sync_out(self._session)

    def _retry_after_sync(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                if "NOT_FOUND" not in str(exc):
                    raise
                self._registry.sync_in(self._session)  # another session created it meanwhile
                return method(*args, **kwargs)

        return call

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython_")):
            raise AttributeError(name)
        if name == "sparkContext":
            raise jvm_attribute_error("sparkContext")
        value = getattr(self._get_session(), name)
        if name in ("sql", "table") and _is_connect(self._session):
            return self._retry_after_sync(value)
        return value

    def __repr__(self) -> str:
        if self._session is None:
            return "<SparkSession (Spark Connect on the local cluster; created on first use)>"
        return repr(self._session)


class SparkContextProxy:
    """``sc``: fails as on Databricks' Spark Connect compute, with what to use instead."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython_")):
            raise AttributeError(name)
        raise jvm_attribute_error("sparkContext")

    def __repr__(self) -> str:
        return "<SparkContext: not available on Spark Connect compute>"


def _is_connect(session: Any) -> bool:
    return type(session).__module__.startswith("pyspark.sql.connect")


def _wait_endpoint(endpoint_file: Path) -> str:
    deadline = time.monotonic() + _ENGINE_WAIT_SECONDS
    while True:
        try:
            data = json.loads(endpoint_file.read_text(encoding="utf-8"))
            return f"sc://{data['host']}:{int(data['port'])}"
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                raise SparkNotAvailable(
                    "spark: the Spark engine of this cluster is not running "
                    f"({endpoint_file} does not exist after {_ENGINE_WAIT_SECONDS:g} s); "
                    "is the cluster terminated?"
                ) from None
            time.sleep(0.05)


# --------------------------------------------------------------------------- paths


def _map(value: Any) -> Any:
    mapper = _PATHS.get("map")
    if mapper is None:
        return value
    if isinstance(value, str):
        return mapper(value)
    if isinstance(value, list | tuple):
        return type(value)(mapper(v) if isinstance(v, str) else v for v in value)
    return value


def _wrap_path_method(
    original: Callable[..., Any], *, every_arg: bool, reads: bool
) -> Callable[..., Any]:
    """Map the path arguments of a reader/writer method, in the outermost call only
    (``csv`` calls ``load``: a path must not be mapped twice). A reader refuses a local path
    that does not exist, as Spark does (Sail would return no rows)."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _DEPTH.get(0, 0) == 0:
            given = list(args if every_arg else args[:1])
            given += [kwargs[k] for k in ("path", "paths") if kwargs.get(k) is not None]
            if every_arg:  # reader.parquet(*paths)
                args = tuple(_map(a) for a in args)
            elif args:
                args = (_map(args[0]), *args[1:])
            for key in ("path", "paths"):
                if key in kwargs:
                    kwargs[key] = _map(kwargs[key])
            if reads:
                _check_exists(given)
        _DEPTH[0] = _DEPTH.get(0, 0) + 1
        try:
            return original(self, *args, **kwargs)
        finally:
            _DEPTH[0] -= 1

    return wrapper


def _check_exists(paths: list[Any]) -> None:
    for path in paths:
        for one in path if isinstance(path, list | tuple) else [path]:
            if not isinstance(one, str) or any(c in one for c in "*?[{"):
                continue
            local = _map(one)
            if local.startswith("/") and not os.path.exists(local):  # noqa: PTH110
                from pyspark.errors import AnalysisException  # type: ignore[import-not-found, unused-ignore]

                raise AnalysisException(message=f"[PATH_NOT_FOUND] Path does not exist: {one}.")


def _wrap_option(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def option(self: Any, key: str, value: Any) -> Any:
        return original(self, key, _map(value) if str(key).lower() == "path" else value)

    return option


def _patch_pyspark() -> None:
    """Map paths in the Spark Connect reader and writer; make ``df.rdd`` say what to use."""
    from pyspark.sql.connect import readwriter  # type: ignore[import-not-found, unused-ignore]
    from pyspark.sql.connect.dataframe import DataFrame  # type: ignore[import-not-found, unused-ignore]

    if getattr(readwriter.DataFrameReader, "__orch_patched__", False):
        return
    reader_methods = ("load", "csv", "json", "parquet", "orc", "text")
    writer_methods = ("save", "csv", "json", "parquet", "orc", "text")
    for cls, names in (
        (readwriter.DataFrameReader, reader_methods),
        (readwriter.DataFrameWriter, writer_methods),
    ):
        for name in names:
            if hasattr(cls, name):
                reads = cls is readwriter.DataFrameReader
                wrapped = _wrap_path_method(
                    getattr(cls, name), every_arg=reads and name == "parquet", reads=reads
                )
                setattr(cls, name, wrapped)
        setattr(cls, "option", _wrap_option(cls.option))  # noqa: B010 - a class of pyspark's
        setattr(cls, "__orch_patched__", True)  # noqa: B010

    original_getattr = DataFrame.__getattr__

    def __getattr__(self: Any, name: str) -> Any:
        if name == "rdd":  # an AttributeError from a property would land here anyway
            raise jvm_attribute_error("rdd")
        return original_getattr(self, name)

    DataFrame.__getattr__ = __getattr__  # type: ignore[method-assign]
