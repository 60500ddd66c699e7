"""Where the Spark side of the local workspace keeps its files, and how kernels find them.

Under ``<state_dir>/spark/``: ``warehouse/`` holds managed tables (``spark.sql.warehouse.dir``),
``catalog.json`` the table registry that makes tables visible to every session, and
``engines/<cluster_id>/`` each cluster's engine (``endpoint.json`` once it listens,
``engine.pid``, ``engine.log``). Never inside the workspace tree.

Standard library only: the kernel launcher imports it.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "CATALOG_VARIABLE",
    "DEFAULT_CATALOG",
    "DEFAULT_CLUSTER_ID",
    "DEFAULT_SCHEMA",
    "ENDPOINT_VARIABLE",
    "ENGINE_VARIABLE",
    "INSTALL_HINT",
    "WAREHOUSE_VARIABLE",
    "catalog_file",
    "engine_dir",
    "kernel_variables",
    "spark_root",
    "warehouse_dir",
]

#: The local workspace's default cluster (:mod:`.clusters` re-exports it); tasks that name no
#: existing cluster use its engine.
DEFAULT_CLUSTER_ID = "0000-000000-local"
ENDPOINT_VARIABLE = "ORCH_SPARK_ENDPOINT_FILE"
#: the engine's name and version, as the kernel's messages give it (``Sail 0.7.2``)
ENGINE_VARIABLE = "ORCH_SPARK_ENGINE"
WAREHOUSE_VARIABLE = "ORCH_SPARK_WAREHOUSE"
CATALOG_VARIABLE = "ORCH_SPARK_CATALOG"
#: Databricks' default catalog on a Unity Catalog workspace, and its default schema.
DEFAULT_CATALOG = "main"
DEFAULT_SCHEMA = "default"
#: The catalogs every engine has; ``hive_metastore`` is where legacy two-level code points.
CATALOGS = (DEFAULT_CATALOG, "hive_metastore")
INSTALL_HINT = "pip install 'orchestrator[spark]'"


def spark_root(state_dir: Path) -> Path:
    return state_dir / "spark"


def warehouse_dir(state_dir: Path) -> Path:
    return spark_root(state_dir) / "warehouse"


def catalog_file(state_dir: Path) -> Path:
    return spark_root(state_dir) / "catalog.json"


def engine_dir(state_dir: Path, cluster_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", cluster_id) or "default"
    return spark_root(state_dir) / "engines" / safe


def kernel_variables(state_dir: Path, cluster_id: str, engine: str | None) -> dict[str, str]:
    """The ``ORCH_SPARK_*`` variables a kernel on ``cluster_id`` needs to reach its engine.
    ``engine`` names the engine (``Sail 0.7.2``), None when this host has none: the kernel,
    which runs in its runtime profile's environment and cannot see the host's packages, then
    gets no endpoint and falls back as ``spark_session`` says."""
    cluster_id = cluster_id or DEFAULT_CLUSTER_ID
    variables = {
        WAREHOUSE_VARIABLE: str(warehouse_dir(state_dir)),
        CATALOG_VARIABLE: str(catalog_file(state_dir)),
    }
    if engine is not None:
        variables[ENDPOINT_VARIABLE] = str(engine_dir(state_dir, cluster_id) / "endpoint.json")
        variables[ENGINE_VARIABLE] = engine
    return variables
