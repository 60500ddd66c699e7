"""ADLS Gen2 storage (``abfss://<container>@<account>.dfs.core.windows.net/<prefix>``) through the
**Blob endpoint** with ``azure-storage-blob``.

Why the Blob endpoint: an ADLS Gen2 account serves it too, a small file is one request there
(Put Blob) instead of three on the DFS endpoint (create, append, flush), and Azurite, the
emulator the tests run against, serves Blob but not DFS. The ``abfss://`` URL stays the user's
name for the place; the client talks to ``https://<account>.blob.<suffix>`` (or a connection
string's ``BlobEndpoint``).

Guarantees:

- Uploads stream from open files: a file up to ``block_size`` is one Put Blob, a larger one is
  staged block by block (Put Block) and made visible by one Put Block List. Either way a blob
  appears whole or not at all: uncommitted blocks are invisible and expire, so a failed upload
  never leaves a half-written file that a notebook could read as complete. Memory per transfer
  is one block, and at most ``concurrency`` transfers run at once.
- Transient faults (408, 500, 502, 503, 504, timeouts, dropped connections) are retried by the
  SDK's own ``ExponentialRetry``, configured explicitly (:class:`RetrySettings`); a seekable
  body is rewound for each attempt.
- On a hierarchical-namespace account, folders are zero-length blobs with the metadata
  ``hdi_isfolder=true``: they are skipped when downloading and sizing, and deleted last, deepest
  first (a folder must be empty to go).
- Every SDK error becomes a one-line :class:`InfrastructureError`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.abfss import parse_abfss
from orchestrator.errors import InfrastructureError
from orchestrator.files import atomic_writer
from orchestrator.signals import submit_all
from orchestrator.storage.base import StorageAuth, clean_prefix, list_tree
from orchestrator.storage.blob_client import (
    MIB,
    RequestStats,
    RetrySettings,
    one_line,
    open_blob_service,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobProperties, ContainerClient

__all__ = ["AdlsStorage", "RequestStats", "RetrySettings"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class AdlsStorage:
    """Build storage in an ADLS Gen2 (or plain Blob) container; see the module docstring."""

    parallel = True  # requests wait on round trips (see Storage.parallel)

    def __init__(
        self,
        location: str,
        *,
        auth: StorageAuth,
        cluster_root: str | None = None,
        concurrency: int = 8,
        retry: RetrySettings | None = None,
        block_size: int = 4 * MIB,
        blob_endpoint: str | None = None,
        credential: TokenCredential | None = None,
    ) -> None:
        self.location = parse_abfss(location)
        self.cluster_root = cluster_root
        self.concurrency = max(1, concurrency)
        self.stats = RequestStats()
        self._blob = open_blob_service(
            self.location,
            auth,
            concurrency=self.concurrency,
            retry=retry or RetrySettings(),
            block_size=block_size,
            stats=self.stats,
            endpoint=blob_endpoint,
            credential=credential,
        )
        self._service = self._blob.client
        self._container: ContainerClient = self._service.get_container_client(
            self.location.container
        )

    def close(self) -> None:
        self._blob.close()

    # -- names --------------------------------------------------------------------------------

    def _key(self, prefix: str) -> str:
        return "/".join(p for p in (self.location.prefix, str(clean_prefix(prefix))) if p)

    def _folder(self, prefix: str) -> str:
        """The blob-name prefix of a folder ("" + the root prefix for the root), ending in '/'."""
        if not prefix.strip("/"):
            return f"{self.location.prefix}/" if self.location.prefix else ""
        return self._key(prefix) + "/"

    def cluster_path(self, prefix: str) -> str:
        if self.cluster_root:
            return f"{self.cluster_root.rstrip('/')}/{clean_prefix(prefix)}"
        return self.location.url(str(clean_prefix(prefix)))

    def describe(self, prefix: str) -> str:
        return self.location.url(str(clean_prefix(prefix)))

    # -- helpers ------------------------------------------------------------------------------

    def _fail(self, action: str, exc: BaseException) -> InfrastructureError:
        if getattr(exc, "error_code", None) == "ContainerNotFound":
            return InfrastructureError(
                f"{action}: container {self.location.container} does not exist in storage "
                f"account {self.location.account}"
            )
        status = getattr(exc, "status_code", None)
        if status in (401, 403) or type(exc).__name__ == "ClientAuthenticationError":
            return InfrastructureError(
                f"{action}: not authorized for {self.location.url()}: {one_line(exc)}"
            )
        return InfrastructureError(f"{action}: {one_line(exc)}")

    def _parallel(self, action: str, work: Callable[[_T], Any], items: Iterable[_T]) -> list[Any]:
        """``work`` on every item, ``concurrency`` at a time; the first error stops the rest."""
        from azure.core.exceptions import AzureError

        todo = list(items)
        if not todo:
            return []
        with ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(todo)), thread_name_prefix="adls"
        ) as pool:
            futures = submit_all(pool, work, todo)  # a signal leaves no unjoined worker
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                failed = next((f for f in futures if f in done and f.exception()), None)
                if failed is not None:
                    raise failed.exception()  # type: ignore[misc]
            except (AzureError, OSError) as exc:
                raise self._fail(action, exc) from exc
            finally:
                for future in futures:
                    future.cancel()
        return [f.result() for f in futures]

    def _blobs(self, folder: str) -> Iterator[BlobProperties]:
        return iter(self._container.list_blobs(name_starts_with=folder, include=["metadata"]))

    def _files(self, folder: str, action: str) -> list[BlobProperties]:
        from azure.core.exceptions import AzureError

        try:
            return [b for b in self._blobs(folder) if not _is_folder(b)]
        except AzureError as exc:
            raise self._fail(action, exc) from exc

    def _put(self, path: Path, name: str, *, overwrite: bool) -> bool:
        """Stream one file to one blob; False when ``overwrite`` is off and it exists."""
        from azure.core.exceptions import ResourceExistsError

        blob = self._container.get_blob_client(name)
        with path.open("rb") as stream:
            try:
                blob.upload_blob(
                    stream, length=path.stat().st_size, overwrite=overwrite, max_concurrency=1
                )
            except ResourceExistsError:
                if overwrite:
                    raise
                return False
        return True

    # -- the Storage interface ----------------------------------------------------------------

    def upload_tree(self, local: Path, prefix: str) -> int:
        base = self._key(prefix)
        files = list_tree(local)
        self._parallel(
            f"uploading {local} to {self.describe(prefix)}",
            lambda item: self._put(item[1], f"{base}/{item[0]}", overwrite=True),
            files,
        )
        return len(files)

    def upload_immutable(self, local: Path, prefix: str) -> int:
        folder = self._key(prefix) + "/"
        action = f"uploading {local} to {self.describe(prefix)}"
        present = {b.name[len(folder) :]: b.size for b in self._files(folder, action)}
        todo = []
        for rel, path in list_tree(local):
            if rel not in present:
                todo.append((rel, path))
            elif present[rel] != path.stat().st_size:
                raise InfrastructureError(
                    f"{action}: {rel} differs from the stored copy; delete "
                    f"{self.describe(prefix)} (content-addressed data is never overwritten)"
                )
        sent = self._parallel(
            action, lambda item: self._put(item[1], folder + item[0], overwrite=False), todo
        )
        return sum(1 for s in sent if s)

    def download_prefix(self, prefix: str, local: Path) -> int:
        folder = self._key(prefix) + "/"
        action = f"downloading {self.describe(prefix)}"
        blobs = []
        for blob in self._files(folder, action):
            rel = _safe_relative(blob.name[len(folder) :])
            if rel is None:
                log.warning("skipping blob with an unsafe name: %r", blob.name)
                continue
            blobs.append((blob.name, local / rel))
        self._parallel(action, lambda item: self._get(*item), blobs)
        return len(blobs)

    def _get(self, name: str, dest: Path) -> None:
        with atomic_writer(dest) as stream:
            self._container.get_blob_client(name).download_blob(max_concurrency=1).readinto(stream)

    def delete_prefix(self, prefix: str) -> bool:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        key = self._key(prefix)
        action = f"deleting {self.describe(prefix)}"
        try:
            blobs = list(self._blobs(key + "/"))
            try:
                own = self._container.get_blob_client(key).get_blob_properties()
            except ResourceNotFoundError:
                own = None
        except AzureError as exc:
            raise self._fail(action, exc) from exc
        files = [b.name for b in blobs if not _is_folder(b)]
        folders = [b.name for b in blobs if _is_folder(b)]
        if own is not None and _is_folder(own):
            folders.append(key)
        self._parallel(action, self._delete, files)
        # hierarchical namespace: a folder goes once it is empty, so the deepest first
        for name in sorted(folders, key=lambda n: n.count("/"), reverse=True):
            try:
                self._delete(name)
            except AzureError as exc:
                raise self._fail(action, exc) from exc
        return bool(files or folders)

    def _delete(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        # already gone is fine: a concurrent cleanup, or a delete retried after it succeeded
        with contextlib.suppress(ResourceNotFoundError):
            self._container.delete_blob(name)

    def list_children(self, prefix: str) -> list[str]:
        from azure.core.exceptions import AzureError
        from azure.storage.blob import BlobPrefix

        folder = self._folder(prefix)
        names: set[str] = set()
        try:
            for item in self._container.walk_blobs(
                name_starts_with=folder, delimiter="/", include=["metadata"]
            ):
                name = item.name[len(folder) :].rstrip("/")
                if name and (isinstance(item, BlobPrefix) or _is_folder(item)):
                    names.add(name)
        except AzureError as exc:
            raise self._fail(f"listing {self.describe(prefix or '.')}", exc) from exc
        return sorted(names)

    def read_text(self, path: str) -> str | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            data = self._container.get_blob_client(self._key(path)).download_blob().readall()
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise self._fail(f"reading {self.describe(path)}", exc) from exc
        return bytes(data).decode("utf-8")

    def size(self, prefix: str) -> int:
        files = self._files(self._key(prefix) + "/", f"sizing {self.describe(prefix)}")
        return sum(int(b.size or 0) for b in files)

    def modified(self, prefix: str) -> datetime | None:
        """The newest Last-Modified of the files under ``prefix`` (None when there are none)."""
        files = self._files(self._key(prefix) + "/", f"listing {self.describe(prefix)}")
        times = [b.last_modified for b in files if b.last_modified is not None]
        return max(times) if times else None


def _is_folder(blob: Any) -> bool:
    metadata = getattr(blob, "metadata", None) or {}
    return str(metadata.get("hdi_isfolder", "")).lower() == "true"


def _safe_relative(name: str) -> PurePosixPath | None:
    """A blob name below a folder as a safe relative path (no '..', no absolute, no empties)."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") for p in parts) or "\\" in name or "\0" in name:
        return None
    return PurePosixPath(*parts)
