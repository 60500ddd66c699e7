"""Opening the build storage a config names (:func:`open_storage`): a local folder
(:mod:`orchestrator.storage.folder`) or ADLS Gen2 (:mod:`orchestrator.storage.adls`, imported only
when used, so commands that never touch ADLS never load the Azure SDK).
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.abfss import is_abfss
from orchestrator.errors import UsageError
from orchestrator.storage.base import Storage, StorageAuth
from orchestrator.storage.folder import LocalFolderStorage

__all__ = ["open_storage"]


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
    if is_abfss(location):
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
