"""Small JSON documents the compute and access APIs keep: clusters, their events, instance
pools, cluster policies, secret ACLs and the permissions of jobs and compute objects.

They live in the store's database (:class:`~orchestrator.local.state.store.Store`), in a table
of their own, ``documents(kind, key, data)``, written through the store's transaction so they
commit with the same guarantees as jobs and runs. A kind is a namespace (``cluster``,
``instance-pool``, ``acl``...); the APIs that own a kind are the only ones that read it. Kept
apart from the store's own tables so that adding a kind never changes the store's schema.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.local.state.store import Store

__all__ = ["Documents"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, key)
)
"""


class Documents:
    """``kind/key -> JSON object`` in the state database, listed in the order first written."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.transaction() as db:
            db.execute(_SCHEMA)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        with self.store.transaction() as db:
            row = db.execute(
                "SELECT data FROM documents WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return dict(json.loads(row[0])) if row else None

    def put(self, kind: str, key: str, data: dict[str, Any]) -> None:
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?) ON CONFLICT(kind, key) "
                "DO UPDATE SET data = excluded.data",
                (kind, key, json.dumps(data)),
            )

    def delete(self, kind: str, key: str) -> bool:
        with self.store.transaction() as db:
            cursor = db.execute("DELETE FROM documents WHERE kind = ? AND key = ?", (kind, key))
        return cursor.rowcount > 0

    def items(self, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        """``(key, document)`` of a kind (whose keys start with ``prefix``), oldest first."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT key, data FROM documents WHERE kind = ? AND substr(key, 1, ?) = ? "
                "ORDER BY rowid",
                (kind, len(prefix), prefix),
            ).fetchall()
        return [(str(key), dict(json.loads(data))) for key, data in rows]

    def delete_prefix(self, kind: str, prefix: str) -> None:
        """Delete a kind's documents whose keys start with ``prefix``, compared as it is, case
        and all (``LIKE`` would take ``A/`` for ``a/``)."""
        with self.store.transaction() as db:
            db.execute(
                "DELETE FROM documents WHERE kind = ? AND substr(key, 1, ?) = ?",
                (kind, len(prefix), prefix),
            )
