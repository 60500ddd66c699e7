"""Build storage in a folder on this machine (:class:`LocalFolderStorage`): the local
workspace's notebooks read it by the same path, a cluster by a mount's path.

Writes are atomic (:func:`orchestrator.files.atomic_path`): a reader never sees half a file, and
content-addressed data is published by a hard link, so it is never overwritten. Each use of a
content-addressed copy refreshes its folder's modification time, which ``orchestrator cleanup``
reads as the copy's last use.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from orchestrator.errors import InfrastructureError
from orchestrator.files import atomic_path
from orchestrator.storage.base import clean_prefix, list_tree

__all__ = ["LocalFolderStorage"]


class LocalFolderStorage:
    """A folder on this machine; the local workspace's notebooks read it by the same path."""

    parallel = False  # system calls: threads only contend (see Storage.parallel)

    def __init__(self, root: Path, *, cluster_root: str | None = None) -> None:
        self.root = root.resolve()
        self.cluster_root = cluster_root

    def _path(self, prefix: str) -> Path:
        return self.root / clean_prefix(prefix)

    def upload_tree(self, local: Path, prefix: str) -> int:
        target = self._path(prefix)
        count = 0
        try:
            for rel, path in list_tree(local):
                # copy to a temporary name, then rename: a reader never sees half a file
                with atomic_path(target / rel) as temporary:
                    shutil.copyfile(path, temporary)
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
            return f"{self.cluster_root.rstrip('/')}/{clean_prefix(prefix)}"
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

    def upload_immutable(self, local: Path, prefix: str) -> int:
        target = self._path(prefix)
        sent = 0
        try:
            for rel, path in list_tree(local):
                dest = target / rel
                if dest.exists():
                    if dest.stat().st_size != path.stat().st_size:
                        raise InfrastructureError(f"{dest}: differs from {path}; delete {target}")
                    continue
                # made here, so a file in the way is an error, not an existing copy
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    # linked, not renamed: it fails if the name exists, so nothing is
                    # overwritten even when two builds upload the same data at once
                    with atomic_path(dest, overwrite=False) as temporary:
                        shutil.copyfile(path, temporary)
                        temporary.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                    sent += 1
                except FileExistsError:
                    pass
            if target.is_dir():
                # the copy's last use: `orchestrator cleanup` keeps copies used recently
                os.utime(target)
        except OSError as exc:
            raise InfrastructureError(f"copying {local} to {target}: {exc}") from exc
        return sent

    def close(self) -> None:
        return None
