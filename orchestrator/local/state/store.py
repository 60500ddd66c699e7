"""Durable state of the local workspace: one SQLite database plus the workspace file tree.

``<state_dir>/state.db`` indexes workspace objects (type, language, ids, times) and holds jobs
and runs as JSON documents; ``<state_dir>/workspace/`` mirrors the workspace tree with each
object's content (notebooks as Databricks SOURCE text), so notebooks run with their folder as
working directory and read the files deployed beside them. SQLite (standard library, WAL mode)
was chosen over JSON files for atomic updates and for cheap concurrent readers in other
processes (child notebook runs resolve paths through it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from orchestrator.local.state.confined import Tree, names
from orchestrator.local.state.records import JobRecord, JobSettings, RunRecord

__all__ = ["Grant", "ObjectRow", "Store", "now_ms"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    path TEXT PRIMARY KEY,
    parent TEXT,
    object_type TEXT NOT NULL,
    language TEXT,
    object_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    modified_at INTEGER NOT NULL,
    size INTEGER
);
CREATE INDEX IF NOT EXISTS objects_parent ON objects(parent);
CREATE INDEX IF NOT EXISTS objects_id ON objects(object_id);
CREATE TABLE IF NOT EXISTS grants (
    object_id INTEGER NOT NULL,
    principal_kind TEXT NOT NULL,
    principal TEXT NOT NULL,
    level TEXT NOT NULL,
    PRIMARY KEY (object_id, principal_kind, principal)
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY,
    created_time INTEGER NOT NULL,
    creator TEXT NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    job_id INTEGER,
    active INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    idempotency_token TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_job ON runs(job_id, run_id);
CREATE UNIQUE INDEX IF NOT EXISTS runs_token ON runs(idempotency_token)
    WHERE idempotency_token IS NOT NULL;
CREATE TABLE IF NOT EXISTS task_runs (task_run_id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
    scope TEXT NOT NULL, key TEXT, value TEXT, updated INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
"""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class ObjectRow:
    path: str
    object_type: str  # NOTEBOOK, DIRECTORY, FILE
    language: str | None
    object_id: int
    created_at: int
    modified_at: int
    size: int | None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "resource_id": str(self.object_id),
            "created_at": self.created_at,
            "modified_at": self.modified_at,
        }
        if self.language:
            out["language"] = self.language
        if self.size is not None and self.object_type != "DIRECTORY":
            out["size"] = self.size
        return out


@dataclass(frozen=True)
class Grant:
    """A permission given directly on a workspace object: a principal (``user``, ``group`` or
    ``service_principal``, and its name) and a permission level."""

    principal_kind: str
    principal: str
    level: str


def parent_of(path: str) -> str | None:
    if path == "/":
        return None
    head = path.rsplit("/", 1)[0]
    return head or "/"


class Store:
    """Thread-safe access to the state database. All writes go through one connection."""

    def __init__(self, state_dir: Path) -> None:
        state_dir = state_dir.resolve()  # kernels run elsewhere: every path given out is absolute
        self.state_dir = state_dir
        self.workspace_root = state_dir / "workspace"
        self.runs_root = state_dir / "runs"
        self.dbfs_root = state_dir / "dbfs"
        self.tmp_root = state_dir / "tmp"
        for folder in (self.workspace_root, self.runs_root, self.dbfs_root, self.tmp_root):
            folder.mkdir(parents=True, exist_ok=True)
            if folder.is_symlink():  # the state is reached through real folders only
                raise ValueError(f"{folder} is a symbolic link: the state dir must hold its own")
        #: the trees the APIs write, reached without following links (``state/confined.py``)
        self.workspace_tree = Tree(self.workspace_root, trash=self.tmp_root)
        self.dbfs_tree = Tree(self.dbfs_root, trash=self.tmp_root, label="dbfs:")
        self.db_path = state_dir / "state.db"
        self._lock = threading.RLock()
        self.closed = False
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if self.get_object("/") is None:
            stamp = now_ms()
            self.put_object(ObjectRow("/", "DIRECTORY", None, 0, stamp, stamp, None))

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def next_id(self, name: str) -> int:
        with self.transaction() as db:
            row = db.execute("SELECT value FROM sequences WHERE name = ?", (name,)).fetchone()
            value = (row[0] if row else 0) + 1
            db.execute("INSERT OR REPLACE INTO sequences(name, value) VALUES (?, ?)", (name, value))
            return int(value)

    # --- workspace objects ---------------------------------------------------------------
    def local_path(self, path: str) -> Path:
        return self.workspace_root / path.lstrip("/")

    def get_object(self, path: str) -> ObjectRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT path, object_type, language, object_id, created_at, modified_at, size "
                "FROM objects WHERE path = ?",
                (path,),
            ).fetchone()
        return ObjectRow(*row) if row else None

    def put_object(self, row: ObjectRow) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.path,
                    parent_of(row.path),
                    row.object_type,
                    row.language,
                    row.object_id,
                    row.created_at,
                    row.modified_at,
                    row.size,
                ),
            )

    def ensure_directories(self, *paths: str) -> None:
        """Make each of ``paths`` (absolute, parents first) a folder if nothing is there: the
        folders a workspace has from its first start (``/Users``, the user's home,
        ``/Shared``)."""
        for path in paths:
            with self._lock:
                if self.get_object(path) is not None:
                    continue
                self.workspace_tree.makedirs(names(path))
                stamp = now_ms()
                row = ObjectRow(path, "DIRECTORY", None, self.next_id("object"), stamp, stamp, None)
                self.put_object(row)

    def object_by_id(self, object_id: int) -> ObjectRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT path, object_type, language, object_id, created_at, modified_at, size "
                "FROM objects WHERE object_id = ?",
                (object_id,),
            ).fetchone()
        return ObjectRow(*row) if row else None

    # --- permissions ---------------------------------------------------------------------
    def grants(self, object_id: int) -> list[Grant]:
        """The permissions given directly on an object, in the order they were first given."""
        with self._lock:
            rows = self._db.execute(
                "SELECT principal_kind, principal, level FROM grants WHERE object_id = ? "
                "ORDER BY rowid",
                (object_id,),
            ).fetchall()
        return [Grant(*row) for row in rows]

    def put_grants(self, object_id: int, grants: list[Grant], *, replace: bool) -> None:
        """Give ``grants`` on an object, in one transaction: instead of all its direct ones
        (``replace``, the API's PUT) or over those of the same principals (PATCH)."""
        with self.transaction() as db:
            if replace:
                db.execute("DELETE FROM grants WHERE object_id = ?", (object_id,))
            for grant in grants:
                db.execute(
                    "INSERT INTO grants VALUES (?, ?, ?, ?) ON CONFLICT"
                    "(object_id, principal_kind, principal) DO UPDATE SET level = excluded.level",
                    (object_id, grant.principal_kind, grant.principal, grant.level),
                )

    def children(self, path: str) -> list[ObjectRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT path, object_type, language, object_id, created_at, modified_at, size "
                "FROM objects WHERE parent = ? ORDER BY path",
                (path,),
            ).fetchall()
        return [ObjectRow(*r) for r in rows]

    def delete_tree(self, path: str) -> None:
        """Delete the object at ``path`` and everything under it.

        "Under it" is the range of paths from ``path/`` up to ``path0`` (``0`` follows ``/``),
        which the primary key's index answers and which compares case-sensitively, as the
        paths are (``LIKE`` would scan the table and take ``/A/x`` for ``/a/x``)."""
        below = (path.rstrip("/") + "/", path.rstrip("/") + "0")
        with self.transaction() as db:  # an object's permissions go with it
            db.execute(
                "DELETE FROM grants WHERE object_id IN (SELECT object_id FROM objects "
                "WHERE path = ? OR (path >= ? AND path < ?))",
                (path, *below),
            )
            db.execute(
                "DELETE FROM objects WHERE path = ? OR (path >= ? AND path < ?)",
                (path, *below),
            )

    # --- jobs ----------------------------------------------------------------------------
    def insert_job(
        self, job_id: int, created_time: int, creator: str, settings: JobSettings
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?)",
                (job_id, created_time, creator, json.dumps(settings)),
            )

    def update_job(self, job_id: int, settings: JobSettings) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET settings = ? WHERE job_id = ?", (json.dumps(settings), job_id)
            )

    def get_job(self, job_id: int) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT job_id, created_time, creator, settings FROM jobs WHERE job_id = ?",
                (job_id,),
            ).fetchone()
        return _job(row) if row else None

    def list_jobs(self) -> list[JobRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id, created_time, creator, settings FROM jobs ORDER BY job_id"
            ).fetchall()
        return [_job(r) for r in rows]

    def delete_job(self, job_id: int) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
        return cursor.rowcount > 0

    # --- runs ----------------------------------------------------------------------------
    def save_run(self, run: RunRecord, *, active: bool, token: str | None = None) -> None:
        with self._lock:
            if self.closed:  # a late update from a thread that outlived a stop: nothing to keep
                return
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
                "active = excluded.active, data = excluded.data",
                (
                    run["run_id"],
                    run.get("job_id"),
                    int(active),
                    run.get("start_time", 0),
                    token,
                    json.dumps(run),
                ),
            )

    def add_task_run(self, task_run_id: int, run_id: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO task_runs VALUES (?, ?)", (task_run_id, run_id)
            )

    def parent_run_id(self, task_run_id: int) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT run_id FROM task_runs WHERE task_run_id = ?", (task_run_id,)
            ).fetchone()
        return int(row[0]) if row else None

    def get_run(self, run_id: int) -> RunRecord | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return cast("RunRecord", json.loads(row[0])) if row else None

    def run_by_token(self, token: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT run_id FROM runs WHERE idempotency_token = ?", (token,)
            ).fetchone()
        return int(row[0]) if row else None

    def list_runs(self, *, job_id: int | None, active_only: bool) -> list[RunRecord]:
        query = "SELECT data FROM runs"
        clauses: list[str] = []
        args: list[Any] = []
        if job_id is not None:
            clauses.append("job_id = ?")
            args.append(job_id)
        if active_only:
            clauses.append("active = 1")
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY run_id DESC"
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [cast("RunRecord", json.loads(r[0])) for r in rows]

    def active_run_ids(self) -> list[int]:
        with self._lock:
            rows = self._db.execute("SELECT run_id FROM runs WHERE active = 1").fetchall()
        return [int(r[0]) for r in rows]

    def ended_runs(self) -> list[tuple[int, int, list[int]]]:
        """``(run_id, end or start time, task run ids)`` of every ended run, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT run_id, start_time, data FROM runs WHERE active = 0 ORDER BY run_id DESC"
            ).fetchall()
        ended = []
        for run_id, start, data in rows:
            doc = json.loads(data)
            tasks = [int(t["run_id"]) for t in doc.get("tasks", []) if "run_id" in t]
            ended.append((int(run_id), int(doc.get("end_time") or start or 0), tasks))
        return ended

    def run_ids_in_use(self) -> tuple[set[int], set[int]]:
        """Ids of runs and task runs the database knows: ``(all, active)``."""
        with self._lock:
            rows = self._db.execute("SELECT run_id, active FROM runs").fetchall()
            links = self._db.execute("SELECT task_run_id, run_id FROM task_runs").fetchall()
        active_runs = {int(r[0]) for r in rows if r[1]}
        known = {int(r[0]) for r in rows} | {int(t) for t, _ in links}
        active = active_runs | {int(t) for t, run in links if int(run) in active_runs}
        return known, active

    def last_id(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM sequences WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def delete_run(self, run_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            self._db.execute("DELETE FROM task_runs WHERE run_id = ?", (run_id,))

    # --- secrets -------------------------------------------------------------------------
    def put_secret(self, scope: str, key: str | None, value: str | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO secrets VALUES (?, ?, ?, ?)", (scope, key, value, now_ms())
            )

    def secret_rows(self) -> list[tuple[str, str | None, str | None, int]]:
        with self._lock:
            if self.closed:  # a task thread that outlived a stop: it records nothing either
                return []
            rows = self._db.execute(
                "SELECT scope, key, value, updated FROM secrets ORDER BY scope, key"
            ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def delete_secret(self, scope: str, key: str | None) -> int:
        with self._lock:
            if key is None:
                cursor = self._db.execute("DELETE FROM secrets WHERE scope = ?", (scope,))
            else:
                cursor = self._db.execute(
                    "DELETE FROM secrets WHERE scope = ? AND key = ?", (scope, key)
                )
        return cursor.rowcount


def _job(row: tuple[Any, ...]) -> JobRecord:
    return {
        "job_id": row[0],
        "created_time": row[1],
        "creator_user_name": row[2],
        "settings": json.loads(row[3]),
    }
