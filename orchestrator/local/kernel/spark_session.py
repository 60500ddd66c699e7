"""``spark`` and ``sc`` of the in-kernel shim: a Spark Connect session on the cluster's engine.

This module owns :class:`SparkProxy` (``spark``, the kernel's one session source, see
:mod:`.spark_state`) and :class:`SparkContextProxy` (``sc``), and keeps the table registry
(:mod:`.spark_catalog`) in step with the session: before each cell and each table lookup it
registers what other sessions of the cluster created, after each cell that used Spark it
records what this one created or dropped.

* ``spark`` is created on first use (``spark.x``, ``SparkSession.getActiveSession()``,
  ``SparkSession.builder.getOrCreate()``, see :mod:`.spark_hooks`): its own Spark Connect
  session (own temp views and confs) on the engine of the task's cluster
  (``$ORCH_SPARK_ENDPOINT_FILE``, waited for while the engine starts), with Delta as the
  default table format, the warehouse under the state dir, catalog ``main`` and schema
  ``default`` as on a Unity Catalog workspace, and the session time zone UTC. Without the
  engine, ``pyspark`` classic (with Java 17) gives a ``local[1]`` session as before; without
  either, a clear error with the install hint.
* ``sc`` and ``spark.sparkContext`` fail as on Databricks' standard-access and serverless
  compute (``JVM_ATTRIBUTE_NOT_SUPPORTED``), plus one line on what to use instead.

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

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
from .engine_errors import jvm_attribute_error
from .spark_catalog import Registry
from .spark_hooks import patch_session_classes
from .spark_paths import set_path_mapper
from .spark_state import SESSION_CONF, set_active

__all__ = ["SparkContextProxy", "SparkProxy"]

_INSTALL_HINT = "pip install 'orchestrator[spark]'"
_ENGINE_WAIT_SECONDS = 30.0


class SparkProxy:
    """``spark``: a Spark Connect session on the cluster's engine, created on first use.

    Names IPython probes for (``_repr_*_``, ``_ipython_*``, dunders) are answered without
    creating the session, so showing or completing ``spark`` stays cheap.
    """

    def __init__(self, config: _Config, map_path: Callable[[str], str]) -> None:
        self._config = config
        self._session: Any = None
        self._dirty = False
        self._ddl = False
        self._registry = Registry(os.environ.get("ORCH_SPARK_CATALOG", ""))
        set_path_mapper(map_path)
        set_active(self)

    @property
    def connected(self) -> bool:
        return self._session is not None

    def session(self) -> Any:
        """The session, created on first use."""
        if self._session is None:
            importlib.invalidate_caches()
            endpoint_file = os.environ.get("ORCH_SPARK_ENDPOINT_FILE", "")
            # set only when the host has the engine (the kernel cannot see the host's packages)
            if endpoint_file:
                self._session = self._connect(Path(endpoint_file))
            else:
                self._session = self._classic_session()
        self._dirty = True
        return self._session

    def mark_used(self, *, ddl: bool = False) -> None:
        self._dirty = True
        self._ddl = self._ddl or ddl

    def sync_tables(self) -> None:
        if self._session is not None and _is_connect(self._session):
            self._registry.sync_in(self._session)

    def _connect(self, endpoint_file: Path) -> Any:
        if importlib.util.find_spec("pyspark") is None:
            raise SparkNotAvailable(f"spark needs the Spark Connect client: {_INSTALL_HINT}")
        url = _wait_endpoint(endpoint_file)
        patch_session_classes()
        from pyspark.sql.connect.session import SparkSession  # type: ignore[import-not-found, unused-ignore]

        builder = SparkSession.builder.remote(url)
        conf = dict(SESSION_CONF)
        warehouse = os.environ.get("ORCH_SPARK_WAREHOUSE", "")
        if warehouse:
            conf["spark.sql.warehouse.dir"] = warehouse
        for key, value in conf.items():
            builder = builder.config(key, value)
        session = builder.create()  # a new session per kernel, never a shared default
        self._registry.sync_in(session, force=True)
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

    def before_cell(self, *args: Any) -> None:
        """IPython ``pre_run_cell``: register the tables other sessions created meanwhile."""
        self.sync_tables()

    def after_cell(self, *args: Any) -> None:
        """IPython ``post_run_cell``: record the tables this session created or dropped."""
        self.flush()

    def flush(self) -> None:
        if self._session is not None and self._dirty:
            ddl, self._dirty, self._ddl = self._ddl, False, False
            if _is_connect(self._session):
                self._registry.sync_out(self._session, refresh=ddl)

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython_")):
            raise AttributeError(name)
        if name == "sparkContext":
            raise jvm_attribute_error("sparkContext")
        return getattr(self.session(), name)

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
