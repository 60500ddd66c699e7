"""Build artifacts storage: models, test scripts and test data in, JUnit XML out.

A storage location is chosen by URL scheme (papermill's habit): a plain path is a local folder
(:class:`LocalFolderStorage`); ``abfss://`` is ADLS Gen2, behind the same interface. The cluster
may see the same place under another path (a ``/dbfs/mnt/...`` mount, a ``/Volumes/...`` path):
:meth:`Storage.cluster_path` gives that path for run parameters.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Protocol

from orchestrator.errors import InfrastructureError, UsageError

__all__ = ["LocalFolderStorage", "Storage", "open_storage"]


class Storage(Protocol):
    def upload_tree(self, local: Path, prefix: str) -> int:
        """Copy the files under ``local`` to ``prefix``; returns the number of files."""
        ...

    def download_prefix(self, prefix: str, local: Path) -> int:
        """Copy everything under ``prefix`` into ``local``; returns the number of files."""
        ...

    def delete_prefix(self, prefix: str) -> bool:
        """Remove ``prefix`` recursively; False when it did not exist."""
        ...

    def cluster_path(self, prefix: str) -> str:
        """How a notebook on the cluster reads ``prefix``."""
        ...

    def describe(self, prefix: str) -> str:
        """Where ``prefix`` is, for humans (a URL or a path)."""
        ...

    def list_children(self, prefix: str) -> list[str]:
        """Names of the immediate sub-folders of ``prefix`` ("" is the root); [] if none."""
        ...

    def read_text(self, path: str) -> str | None:
        """The text of one file, or None when it does not exist."""
        ...

    def size(self, prefix: str) -> int:
        """Bytes stored under ``prefix`` (0 when it does not exist)."""
        ...


def _clean_prefix(prefix: str) -> PurePosixPath:
    parts = PurePosixPath(prefix.strip("/")).parts
    if any(p in ("..", ".") for p in parts) or not parts:
        raise UsageError(f"invalid storage prefix: {prefix!r}")
    return PurePosixPath(*parts)


class LocalFolderStorage:
    """A folder on this machine; the local workspace's notebooks read it by the same path."""

    def __init__(self, root: Path, *, cluster_root: str | None = None) -> None:
        self.root = root.resolve()
        self.cluster_root = cluster_root

    def _path(self, prefix: str) -> Path:
        return self.root / _clean_prefix(prefix)

    def upload_tree(self, local: Path, prefix: str) -> int:
        target = self._path(prefix)
        count = 0
        try:
            for path in sorted(local.rglob("*")):
                if path.is_dir() or "__pycache__" in path.parts:
                    continue
                dest = target / path.relative_to(local)
                dest.parent.mkdir(parents=True, exist_ok=True)
                # copy to a temporary name, then rename: a reader never sees half a file
                fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".upload-")
                os.close(fd)
                try:
                    shutil.copyfile(path, tmp)
                    Path(tmp).replace(dest)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                count += 1
        except OSError as exc:
            raise InfrastructureError(f"copying {local} to {target}: {exc}") from exc
        return count

    def download_prefix(self, prefix: str, local: Path) -> int:
        source = self._path(prefix)
        if not source.exists():
            return 0
        count = 0
        for path in sorted(source.rglob("*")):
            if path.is_file():
                dest = local / path.relative_to(source)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                count += 1
        return count

    def delete_prefix(self, prefix: str) -> bool:
        target = self._path(prefix)
        if not target.exists():
            return False
        shutil.rmtree(target)
        return True

    def cluster_path(self, prefix: str) -> str:
        if self.cluster_root:
            return f"{self.cluster_root.rstrip('/')}/{_clean_prefix(prefix)}"
        return str(self._path(prefix))

    def describe(self, prefix: str) -> str:
        return str(self._path(prefix))

    def list_children(self, prefix: str) -> list[str]:
        folder = self._path(prefix) if prefix.strip("/") else self.root
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir())

    def read_text(self, path: str) -> str | None:
        target = self._path(path)
        try:
            return target.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def size(self, prefix: str) -> int:
        target = self._path(prefix)
        if not target.exists():
            return 0
        return sum(p.stat().st_size for p in target.rglob("*") if p.is_file())


def open_storage(location: str, *, cluster_root: str | None, base: Path) -> Storage:
    """The storage for a location from the config: a local path (relative to ``base``) for now."""
    if location.startswith("abfss://"):
        raise UsageError(
            f"{location}: ADLS Gen2 storage is not available in this version; "
            "use a local folder for storage_root"
        )
    if "://" in location:
        raise UsageError(f"{location}: unsupported storage URL (use abfss:// or a local path)")
    root = Path(location)
    if not root.is_absolute():
        root = base / root
    return LocalFolderStorage(root, cluster_root=cluster_root)
