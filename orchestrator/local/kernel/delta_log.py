"""A Delta table's transaction log, read directly: snapshots, history and unreferenced files.

The engine (Sail) writes and reads Delta tables but has no ``DESCRIBE DETAIL``,
``DESCRIBE HISTORY`` or ``VACUUM``; ``deltalake`` is not a dependency here. The log is plain
data (the Delta protocol): ``_delta_log/<version>.json`` commits of one action per line
(``commitInfo``, ``protocol``, ``metaData``, ``add``, ``remove``...) and, every so often, a
Parquet checkpoint named by ``_last_checkpoint``. This module replays them into a
:class:`Snapshot` (what DESCRIBE DETAIL shows), lists the commits (DESCRIBE HISTORY) and
finds the files no snapshot needs (VACUUM). Checkpoints are read with ``pyarrow``, which the
Spark client needs anyway, imported only when a table has one.

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = ["DeltaLog", "NotADeltaTable", "Snapshot", "local_path"]

_LOG = "_delta_log"


class NotADeltaTable(LookupError):
    """The location holds no Delta log."""


def local_path(location: str) -> Path:
    """A table location as the engine reports it (``file:///x/``, ``/x``) as a local path."""
    if location.startswith("file:"):
        return Path(unquote(urlparse(location).path))
    return Path(location)


@dataclass
class Snapshot:
    """The table at one version: its protocol, metadata, live files and tombstones."""

    version: int
    protocol: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    tombstones: dict[str, dict[str, Any]] = field(default_factory=dict)
    timestamp_ms: int = 0

    def apply(self, action: dict[str, Any]) -> None:
        if "protocol" in action:
            self.protocol = dict(action["protocol"])
        elif "metaData" in action:
            self.metadata = dict(action["metaData"])
        elif "add" in action:
            add = action["add"]
            self.files[_key(add["path"])] = add
            self.tombstones.pop(_key(add["path"]), None)
        elif "remove" in action:
            remove = action["remove"]
            self.files.pop(_key(remove["path"]), None)
            self.tombstones[_key(remove["path"])] = remove
        elif "commitInfo" in action:
            self.timestamp_ms = int(action["commitInfo"].get("timestamp") or 0)

    @property
    def size_bytes(self) -> int:
        return sum(int(f.get("size") or 0) for f in self.files.values())

    @property
    def partition_columns(self) -> list[str]:
        return [str(c) for c in self.metadata.get("partitionColumns") or []]

    @property
    def properties(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.metadata.get("configuration") or {}).items()}


def _key(path: str) -> str:
    return unquote(path)


class DeltaLog:
    """The log of the Delta table at ``location`` (a local folder)."""

    def __init__(self, location: Path) -> None:
        self.location = location
        self.log_dir = location / _LOG
        if not self.log_dir.is_dir():
            raise NotADeltaTable(f"{location} is not a Delta table (no {_LOG})")

    def versions(self) -> list[int]:
        """The versions whose commit files are still in the log, oldest first."""
        found = []
        for entry in os.scandir(self.log_dir):
            stem, _, ext = entry.name.partition(".")
            if ext == "json" and stem.isdigit():
                found.append(int(stem))
        return sorted(found)

    def commit(self, version: int) -> list[dict[str, Any]]:
        """The actions of one commit, in order."""
        text = (self.log_dir / f"{version:020d}.json").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def commit_info(self, version: int) -> dict[str, Any]:
        for action in self.commit(version):
            if "commitInfo" in action:
                return dict(action["commitInfo"])
        return {}

    def history(self, limit: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(version, commitInfo)`` of every commit in the log, newest first."""
        for count, version in enumerate(reversed(self.versions())):
            if limit is not None and count >= limit:
                return
            yield version, self.commit_info(version)

    def snapshot(self, version: int | None = None) -> Snapshot:
        """The table at ``version`` (the latest when None)."""
        versions = self.versions()
        checkpoint = self._checkpoint(version)
        snapshot = Snapshot(version=-1)
        if checkpoint is not None:
            snapshot = self._read_checkpoint(*checkpoint)
        wanted = versions[-1] if version is None and versions else version
        if wanted is None:
            wanted = snapshot.version
        for number in versions:
            if snapshot.version < number <= wanted:
                for action in self.commit(number):
                    snapshot.apply(action)
                snapshot.version = number
        if snapshot.version < 0 or snapshot.version != wanted:
            raise NotADeltaTable(f"{self.location} has no version {wanted}")
        return snapshot

    def created_ms(self) -> int:
        """When the table was created (its metadata's ``createdTime``, else its first commit)."""
        versions = self.versions()
        if versions and versions[0] == 0:
            for action in self.commit(0):
                if "metaData" in action and action["metaData"].get("createdTime"):
                    return int(action["metaData"]["createdTime"])
            return int(self.commit_info(0).get("timestamp") or 0)
        return 0

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint(self, version: int | None) -> tuple[int, list[Path]] | None:
        """The newest checkpoint at or before ``version``: its version and Parquet parts."""
        parts: dict[int, list[Path]] = {}
        for entry in os.scandir(self.log_dir):
            name = entry.name
            if ".checkpoint." in name and name.endswith(".parquet"):
                stem = name.split(".", 1)[0]
                if stem.isdigit():
                    parts.setdefault(int(stem), []).append(Path(entry.path))
        usable = [v for v in parts if version is None or v <= version]
        if not usable:
            return None
        chosen = max(usable)
        return chosen, sorted(parts[chosen])

    def _read_checkpoint(self, version: int, files: list[Path]) -> Snapshot:
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]

        snapshot = Snapshot(version=version)
        for file in files:
            for row in pq.read_table(file).to_pylist():
                for name in ("protocol", "metaData", "add", "remove"):
                    value = row.get(name)
                    if value:
                        if name == "add" and isinstance(value.get("partitionValues"), list):
                            value["partitionValues"] = dict(value["partitionValues"])
                        if name == "metaData" and isinstance(value.get("configuration"), list):
                            value["configuration"] = dict(value["configuration"])
                        snapshot.apply({name: value})
        return snapshot

    # ------------------------------------------------------------------ vacuum

    def unreferenced(self, cutoff_ms: int) -> list[Path]:
        """Files of the table that no current snapshot needs and that are older than
        ``cutoff_ms``: removed files whose removal is older, and files the log never knew
        whose modification time is older. The log, hidden files (``_`` and ``.``) and
        folders are never listed."""
        snapshot = self.snapshot()
        live = set(snapshot.files)
        found: list[Path] = []
        for folder, dirs, names in os.walk(self.location):
            relative_dir = Path(folder).relative_to(self.location)
            dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
            for name in names:
                if name.startswith(("_", ".")):
                    continue
                relative = (relative_dir / name).as_posix()
                if relative in live:
                    continue
                path = Path(folder) / name
                removed = snapshot.tombstones.get(relative)
                if removed is not None:
                    when = int(removed.get("deletionTimestamp") or 0)
                else:
                    when = int(path.stat().st_mtime * 1000)
                if when < cutoff_ms:
                    found.append(path)
        return sorted(found)
