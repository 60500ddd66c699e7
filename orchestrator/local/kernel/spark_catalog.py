"""The table registry that makes a cluster's tables visible to every Spark session.

Sail keeps catalog entries per Spark Connect session and in memory, while tables and views on
Databricks are shared and durable. This module owns the registry file (``$ORCH_SPARK_CATALOG``,
a JSON object ``{"schemas": [...], "tables": {"c.s.t": {"location", "provider"} or {"view":
text}}}`` under the workspace's state dir): :meth:`Registry.sync_in` registers every known
schema, table and view in a session (``CREATE ... IF NOT EXISTS``, tables by location, views
by their text), :meth:`Registry.sync_out` records what a session created or dropped. The
kernel calls ``sync_in`` when its session starts, before each cell and table lookup (a no-op
unless the file changed) and when a table is not found, ``sync_out`` after each cell that used
Spark. Writers take an exclusive lock. Global temporary views need none of this: the engine
shares them between the sessions of one cluster, as Spark does.

It runs inside user kernels: standard library only; the session is passed in.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import write_json_atomic

__all__ = ["Registry"]


_CATALOGS = ("main", "hive_metastore")
_SKIP_SCHEMAS = {"information_schema", "global_temp"}


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _qualified(name: str) -> str:
    return ".".join(_quote(part) for part in name.split("."))


class Registry:
    """The registry file and what this kernel's session has seen of it."""

    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None
        self._seen_tables: set[str] = set()
        self._seen_schemas: set[str] = set()
        self._signature: tuple[int, int] | None = None

    def _changed(self) -> bool:
        """Whether the file changed since the last :meth:`sync_in` (one ``stat``)."""
        if self.path is None:
            return False
        try:
            info = self.path.stat()
        except OSError:
            return False
        signature = (info.st_mtime_ns, info.st_size)
        changed = signature != self._signature
        self._signature = signature
        return changed

    # ------------------------------------------------------------------ file

    def load(self) -> dict[str, Any]:
        if self.path is None:
            return {"schemas": [], "tables": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"schemas": [], "tables": {}}
        if not isinstance(data, dict):
            return {"schemas": [], "tables": {}}
        data.setdefault("schemas", [])
        data.setdefault("tables", {})
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write the registry under an exclusive lock; written atomically."""
        assert self.path is not None
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / ".catalog.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.load()
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                write_json_atomic(self.path, data)

    # ------------------------------------------------------------------ sessions

    def sync_in(self, session: Any, *, force: bool = False) -> None:
        """Register every schema, table and view of the registry in ``session`` (only when
        the file changed since the last time, unless ``force``)."""
        if not self._changed() and not force:
            return
        data = self.load()
        for schema in data["schemas"]:
            if schema not in self._seen_schemas:
                with contextlib.suppress(Exception):
                    _engine_sql(
                        session, f"CREATE SCHEMA IF NOT EXISTS {_qualified(schema)}"
                    ).collect()
                self._seen_schemas.add(schema)
        views = []
        for name, entry in data["tables"].items():
            if name in self._seen_tables:
                continue
            if "view" in entry:
                views.append((name, str(entry["view"])))
                continue
            if not Path(entry["location"]).exists():
                continue
            location = str(entry["location"]).replace("'", "\\'")
            self._register(
                session,
                name,
                f"CREATE TABLE IF NOT EXISTS {_qualified(name)} "
                f"USING {entry.get('provider') or 'delta'} LOCATION '{location}'",
            )
        for name, text in views:  # after the tables they read
            self._register(session, name, f"CREATE VIEW IF NOT EXISTS {_qualified(name)} AS {text}")

    def _register(self, session: Any, name: str, statement: str) -> None:
        """Run ``statement``; a name is seen (and forgotten when it goes) only once the
        session has it: one that failed to register is not this session's to drop."""
        try:
            _engine_sql(session, statement).collect()
        except Exception:  # noqa: BLE001 - a schema or table the engine refuses: skipped
            return
        self._seen_tables.add(name)

    def sync_out(self, session: Any, *, refresh: bool = False) -> None:
        """Record the schemas and tables ``session`` created, forget those it dropped; with
        ``refresh`` (it ran DDL), also update the entries of tables it may have dropped and
        made again (a new location)."""
        if self.path is None:
            return
        schemas, tables = _list_catalog(session)
        with self._locked() as data:
            for schema in schemas - set(data["schemas"]):
                data["schemas"].append(schema)
            for schema in (self._seen_schemas - schemas) & set(data["schemas"]):
                data["schemas"].remove(schema)
            known = set(data["tables"])
            for name in (tables - known) | (tables & known if refresh else set()):
                entry = _describe(session, name)
                if entry is not None:
                    data["tables"][name] = entry
            for name in (self._seen_tables - tables) & set(data["tables"]):
                del data["tables"][name]
        self._seen_schemas = schemas
        self._seen_tables = tables


def _engine_sql(session: Any, sql: str) -> Any:
    """The engine's own ``sql`` (not the notebook's, which plans and records statements)."""
    raw = getattr(type(session), "__orch_engine_sql__", None)
    return raw(session, sql) if raw is not None else session.sql(sql)


def _rows(session: Any, sql: str) -> list[Any]:
    try:
        return list(_engine_sql(session, sql).collect())
    except Exception:  # noqa: BLE001 - a catalog the engine lacks, a schema dropped meanwhile
        return []


def _list_catalog(session: Any) -> tuple[set[str], set[str]]:
    schemas: set[str] = set()
    tables: set[str] = set()
    for catalog in _CATALOGS:
        for row in _rows(session, f"SHOW SCHEMAS IN {_quote(catalog)}"):
            schema = str(row[0])
            if schema in _SKIP_SCHEMAS:
                continue
            schemas.add(f"{catalog}.{schema}")
            for table in _rows(session, f"SHOW TABLES IN {_quote(catalog)}.{_quote(schema)}"):
                if not table["isTemporary"]:
                    tables.add(f"{catalog}.{schema}.{table['tableName']}")
    return schemas, tables


def _describe(session: Any, name: str) -> dict[str, str] | None:
    info = {
        str(row["col_name"]): str(row["data_type"])
        for row in _rows(session, f"DESCRIBE TABLE EXTENDED {_qualified(name)}")
    }
    if info.get("Type") == "VIEW":
        text = info.get("View Text", "").strip()
        return {"view": text} if text else None
    location = info.get("Location", "")
    if not location or not Path(location.removeprefix("file://")).is_absolute():
        return None
    return {"location": location.removeprefix("file://"), "provider": info.get("Provider", "delta")}
