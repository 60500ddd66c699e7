"""The build storage's interface and what every implementation shares: the :class:`Storage`
protocol (models, test scripts and test data in, JUnit XML out), storage credentials
(:class:`StorageAuth`, :func:`storage_auth`) and the tree helpers.

The implementations are :class:`~orchestrator.storage.folder.LocalFolderStorage` and
:class:`~orchestrator.storage.adls.AdlsStorage`; :func:`orchestrator.storage.open.open_storage`
picks one by URL scheme. The cluster may see the same place under another path (a
``/dbfs/mnt/...`` mount, a ``/Volumes/...`` path): :meth:`Storage.cluster_path` gives that path
for run parameters.

Test data is content-addressed: :func:`tree_digest` names a tree by the SHA-256 of its paths and
contents, and :meth:`Storage.upload_immutable` puts it under
:func:`orchestrator.layout.data_prefix` once. Files there are never overwritten, and builds only
read them, so concurrent builds share one copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.config.schema import StorageConfig

__all__ = ["Storage", "StorageAuth", "clean_prefix", "list_tree", "storage_auth", "tree_digest"]

_HASH_CHUNK = 1024 * 1024


class Storage(Protocol):
    #: whether calls gain from running side by side: True for storage over the network, whose
    #: calls wait on round trips; False for a folder on this machine, whose calls are a few
    #: system calls each, so threads only contend for the interpreter (a 500-build cleanup
    #: spent three times the CPU deleting local prefixes 16 at a time than one at a time)
    parallel: bool

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
        prefixes (:func:`orchestrator.layout.data_prefix`), where a present name means the same
        content."""
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
