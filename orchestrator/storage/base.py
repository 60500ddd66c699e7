"""Build artifacts storage: models, test scripts and test data in, JUnit XML out.

A storage location is chosen by URL scheme (papermill's habit): a plain path is a local folder
(:class:`LocalFolderStorage`); ``abfss://`` is ADLS Gen2 (:mod:`orchestrator.storage.adls`, imported
only when used), behind the same interface. The cluster may see the same place under another
path (a ``/dbfs/mnt/...`` mount, a ``/Volumes/...`` path): :meth:`Storage.cluster_path` gives that
path for run parameters.

Test data is content-addressed: :func:`tree_digest` names a tree by the SHA-256 of its paths and
contents, and :meth:`Storage.upload_immutable` puts it under ``_data/<digest>/`` once. Files there
are never overwritten, and builds only read them, so concurrent builds share one copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from orchestrator.errors import InfrastructureError, UsageError

if TYPE_CHECKING:
    from orchestrator.config.schema import StorageConfig

__all__ = [
    "DATA_PREFIX",
    "LocalFolderStorage",
    "Storage",
    "StorageAuth",
    "clean_prefix",
    "data_prefix",
    "list_tree",
    "open_storage",
    "storage_auth",
    "tree_digest",
]

#: Where content-addressed test data lives, under the storage root (not a repo name).
DATA_PREFIX = "_data"
_HASH_CHUNK = 1024 * 1024


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

    def upload_immutable(self, local: Path, prefix: str) -> int:
        """Copy the files under ``local`` that ``prefix`` does not hold yet, never overwriting
        one; returns the number of files sent (0 when all were there). For content-addressed
        prefixes (:func:`data_prefix`), where a present name means the same content."""
        ...

    def close(self) -> None:
        """Release connections (a no-op for a local folder)."""
        ...


@dataclass(frozen=True)
class StorageAuth:
    """Resolved storage credentials (values hidden from ``repr``). All None means the Azure
    SDK's ``DefaultAzureCredential``. A connection string wins over a key, a key over a SAS."""

    connection_string: str | None = field(default=None, repr=False)
    account_key: str | None = field(default=None, repr=False)
    sas_token: str | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        if self.connection_string:
            return "connection string"
        if self.account_key:
            return "account key"
        return "SAS token" if self.sas_token else "DefaultAzureCredential"


def storage_auth(
    config: StorageConfig,
    *,
    environ: Mapping[str, str],
    keyvault: Callable[[str], str] | None = None,
) -> StorageAuth:
    """Resolve the storage secrets the config references (env or Key Vault)."""
    from orchestrator.config.loader import resolve_secret

    values: dict[str, str] = {}
    for name in ("connection_string", "account_key", "sas_token"):
        ref = getattr(config, name)
        if ref is not None:
            values[name] = resolve_secret(
                ref, field=f"storage.{name}", environ=environ, keyvault=keyvault
            )
    return StorageAuth(**values)


def clean_prefix(prefix: str) -> PurePosixPath:
    """``prefix`` as relative path segments; UsageError for empty, ``.`` or ``..`` parts."""
    parts = PurePosixPath(prefix.strip("/")).parts
    if any(p in ("..", ".") for p in parts) or not parts:
        raise UsageError(f"invalid storage prefix: {prefix!r}")
    return PurePosixPath(*parts)


def list_tree(local: Path) -> list[tuple[str, Path]]:
    """The files under ``local``: (relative POSIX path, path), sorted, no ``__pycache__``."""
    if not local.is_dir():
        return []
    return [
        (path.relative_to(local).as_posix(), path)
        for path in sorted(local.rglob("*"))
        if path.is_file() and "__pycache__" not in path.relative_to(local).parts
    ]


def tree_digest(local: Path) -> str:
    """SHA-256 (hex) of a tree: every file's relative path, size and content hash, in order."""
    digest = hashlib.sha256()
    for rel, path in list_tree(local):
        content = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(_HASH_CHUNK):
                content.update(chunk)
        digest.update(f"{rel}\0{path.stat().st_size}\0{content.hexdigest()}\n".encode())
    return digest.hexdigest()


def data_prefix(digest: str) -> str:
    """The shared, immutable prefix of a test-data tree with this digest."""
    return f"{DATA_PREFIX}/{digest}"


class LocalFolderStorage:
    """A folder on this machine; the local workspace's notebooks read it by the same path."""

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
                dest = target / rel
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
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".upload-")
                os.close(fd)
                try:
                    shutil.copyfile(path, tmp)
                    Path(tmp).chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                    # link, not rename: it fails if the name exists, so nothing is overwritten
                    # even when two builds upload the same data at once
                    os.link(tmp, dest)
                    sent += 1
                except FileExistsError:
                    pass
                finally:
                    Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            raise InfrastructureError(f"copying {local} to {target}: {exc}") from exc
        return sent

    def close(self) -> None:
        return None


def open_storage(
    location: str,
    *,
    cluster_root: str | None,
    base: Path,
    auth: StorageAuth | None = None,
    concurrency: int = 8,
) -> Storage:
    """The storage for a location from the config: ``abfss://`` (ADLS Gen2 over the Blob
    endpoint, see :mod:`orchestrator.storage.adls`) or a local path (relative to ``base``)."""
    if location.startswith("abfss://"):
        from orchestrator.storage.adls import AdlsStorage

        return AdlsStorage(
            location, auth=auth or StorageAuth(), cluster_root=cluster_root, concurrency=concurrency
        )
    if "://" in location:
        raise UsageError(f"{location}: unsupported storage URL (use abfss:// or a local path)")
    root = Path(location)
    if not root.is_absolute():
        root = base / root
    return LocalFolderStorage(root, cluster_root=cluster_root)
