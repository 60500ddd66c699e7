"""A ``WorkspaceClient`` for the build's target: the configured workspace through
databricks-sdk's unified auth, or, with no host configured, a local workspace started in this
process (the embedded default).

The auto-started local workspace keeps its state in ``<repo>/.orchestrator/local-workspace`` so
the repo's job and earlier runs stay visible between builds. One process at a time owns that
folder (an exclusive lock); a build that finds it taken uses a temporary state folder instead.

:func:`open_services` is what a build opens: the Key Vault resolver (when ``key_vault_url`` is
set), the storage with its resolved credentials and the workspace connection. Every secret is
resolved, and registered for masking, before anything remote is changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.config.loader import resolve_secret
from orchestrator.errors import InfrastructureError, UsageError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from orchestrator.config.schema import BuildConfig
    from orchestrator.storage.base import Storage

__all__ = ["LOCAL_CLUSTER_ID", "Connection", "connect", "open_services"]

log = logging.getLogger(__name__)

LOCAL_CLUSTER_ID = "0000-000000-local"


@dataclass(frozen=True)
class Connection:
    client: WorkspaceClient
    host: str
    local: bool
    cluster_id: str
    secrets: tuple[str, ...]  # resolved secret values, for masking


@contextmanager
def _local_state(root: Path) -> Iterator[Path]:
    state = root / ".orchestrator" / "local-workspace"
    state.mkdir(parents=True, exist_ok=True)
    handle = (state / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        log.warning("%s is in use by another build; using a temporary local workspace", state)
        with tempfile.TemporaryDirectory(prefix="orchestrator-local-") as tmp:
            yield Path(tmp)
        return
    try:
        yield state
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _pool_size(config: BuildConfig) -> int:
    """Enough keep-alive connections for the parallel deploy (requests' default is 10 over
    http, so 16 parallel imports would reconnect)."""
    return max(20, config.concurrency.deploy + 4)


@contextmanager
def connect(
    config: BuildConfig,
    *,
    environ: Mapping[str, str],
    keyvault: Callable[[str], str] | None = None,
) -> Iterator[Connection]:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    if config.workspace.is_local:
        from orchestrator.local import start_local_workspace

        with _local_state(config.root) as state:
            try:
                workspace = start_local_workspace(state, cluster_start_delay=1.0)
            except OSError as exc:
                raise InfrastructureError(f"cannot start the local workspace: {exc}") from exc
            try:
                client = WorkspaceClient(
                    config=Config(
                        host=workspace.url,
                        token=workspace.token,
                        auth_type="pat",
                        max_connections_per_pool=_pool_size(config),
                    )
                )
                yield Connection(
                    client,
                    workspace.url,
                    True,
                    config.cluster_id or LOCAL_CLUSTER_ID,
                    (workspace.token,),
                )
            finally:
                workspace.stop()
        return

    ws = config.workspace
    kwargs: dict[str, Any] = {}
    secrets: list[str] = []
    for name in ("host", "profile", "auth_type", "client_id", "tenant_id"):
        value = getattr(ws, name)
        if value:
            kwargs[{"tenant_id": "azure_tenant_id"}.get(name, name)] = value
    for name, ref in (("token", ws.token), ("client_secret", ws.client_secret)):
        if ref is not None:
            value = resolve_secret(
                ref, field=f"workspace.{name}", environ=environ, keyvault=keyvault
            )
            kwargs[name] = value
            secrets.append(value)
    if ws.client_secret is not None and ws.tenant_id:
        kwargs["azure_client_secret"] = kwargs.pop("client_secret")
        kwargs["azure_client_id"] = kwargs.pop("client_id", "")
    if not config.cluster_id:
        raise UsageError(f"target {config.target}: cluster_id is required for a remote workspace")
    try:
        client = WorkspaceClient(
            config=Config(**kwargs, max_connections_per_pool=_pool_size(config))
        )
    except ValueError as exc:  # the SDK's own config validation
        raise UsageError(f"workspace authentication: {exc}") from exc
    yield Connection(client, str(ws.host), False, config.cluster_id, tuple(secrets))


@contextmanager
def open_services(
    config: BuildConfig, *, environ: Mapping[str, str]
) -> Iterator[tuple[Connection, Storage]]:
    """Key Vault (if configured) -> storage (credentials resolved) -> workspace connection."""
    from orchestrator.adapters.keyvault import keyvault_for
    from orchestrator.masking import register_secret
    from orchestrator.storage.base import StorageAuth, open_storage, storage_auth

    storage_config = config.storage
    keyvault = keyvault_for(config)
    try:
        auth = (
            storage_auth(storage_config, environ=environ, keyvault=keyvault)
            if storage_config.is_remote
            else StorageAuth()
        )
        storage = open_storage(
            storage_config.root,
            cluster_root=storage_config.cluster_path,
            base=config.root,
            auth=auth,
            concurrency=config.concurrency.deploy,
        )
        try:
            with connect(config, environ=environ, keyvault=keyvault) as conn:
                for value in conn.secrets:
                    register_secret(value)
                yield conn, storage
        finally:
            storage.close()
    finally:
        if keyvault is not None:
            keyvault.close()
