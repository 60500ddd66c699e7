"""The services a build or a cleanup opens for its target: the Databricks workspace (through the
adapter, :class:`~orchestrator.adapters.databricks.DatabricksWorkspace`) and the storage.

The workspace is the configured one, reached with databricks-sdk's unified auth, or, with no host
configured, a local workspace started in this process (the embedded default).

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
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from orchestrator.adapters.databricks import open_workspace, preload_sdk
from orchestrator.adapters.local_admin import LocalAdminClient
from orchestrator.clock import Clock
from orchestrator.config.loader import resolve_secret
from orchestrator.errors import EXIT_OK, InfrastructureError, UsageError
from orchestrator.layout import LOCAL_STATE_DIR
from orchestrator.local.runtime.spark_locations import DEFAULT_CLUSTER_ID

if TYPE_CHECKING:
    from orchestrator.config.schema import BuildConfig
    from orchestrator.ports import LocalAdmin, Workspace
    from orchestrator.storage.base import Storage

__all__ = [
    "LOCAL_CLUSTER_ID",
    "Connection",
    "connect",
    "open_services",
    "prune_local",
    "serve_local",
    "setup_local",
]

log = logging.getLogger(__name__)

#: hosts of a workspace on this machine: the embedded one or `orchestrator local serve`
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

#: the embedded workspace's cluster: defined by the local workspace, named here for the build
LOCAL_CLUSTER_ID = DEFAULT_CLUSTER_ID


@dataclass(frozen=True)
class Connection:
    workspace: Workspace
    host: str
    local: bool
    cluster_id: str
    secrets: tuple[str, ...]  # resolved secret values, for masking
    #: the embedded local workspace's state folder, when it outlives the build (the repo's
    #: ``.orchestrator/local-workspace``; None for a remote workspace or a temporary state)
    kept_state: Path | None = None
    #: the local workspace's own API, for a workspace on this machine (embedded, or
    #: ``orchestrator local serve``); None for Databricks, which has no such API
    admin: LocalAdmin | None = None


@contextmanager
def _local_state(root: Path) -> Iterator[tuple[Path, bool]]:
    """The repo's local workspace state folder, locked for this process (True: it is kept), or
    a temporary one when another process holds it (False)."""
    state = root / LOCAL_STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    handle = (state / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        log.warning("%s is in use by another build; using a temporary local workspace", state)
        with tempfile.TemporaryDirectory(prefix="orchestrator-local-") as tmp:
            yield Path(tmp), False
        return
    try:
        yield state, True
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
    clock: Clock | None = None,
    languages: Collection[str] | None = None,
    spark: bool = False,
) -> Iterator[Connection]:
    """The workspace connection; an embedded local workspace warms kernels of ``languages``
    only (the build's notebooks'), when given, and readies Spark notebooks' kernels when
    ``spark`` (a notebook of the build uses it)."""
    if config.workspace.is_local:
        from orchestrator.local.server import start_local_workspace

        with _local_state(config.root) as (state, kept):
            try:
                # a cluster start lasts as long as its Spark engine takes to listen, no longer
                workspace = start_local_workspace(state, cluster_start_delay=0.0)
            except OSError as exc:
                raise InfrastructureError(f"cannot start the local workspace: {exc}") from exc
            # kernels start while the build prepares and deploys
            workspace.warm(languages, spark=spark)
            # then the SDK's import, in a thread: begun earlier, it slowed the workspace's
            # start (one GIL) and so the kernels' launch, which use the other cores
            preload_sdk()
            try:
                remote = open_workspace(
                    {"host": workspace.url, "token": workspace.token, "auth_type": "pat"},
                    pool_size=_pool_size(config),
                    clock=clock,
                    connect=config.timeouts.connect,
                )
                yield Connection(
                    remote,
                    workspace.url,
                    True,
                    config.cluster_id or LOCAL_CLUSTER_ID,
                    (workspace.token,),
                    state if kept else None,
                    admin=LocalAdminClient(workspace.url, workspace.token),
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
    remote = open_workspace(
        kwargs, pool_size=_pool_size(config), clock=clock, connect=config.timeouts.connect
    )
    host = str(ws.host)
    admin = None
    if urlsplit(host).hostname in LOOPBACK_HOSTS and "token" in kwargs:
        admin = LocalAdminClient(host, kwargs["token"])  # an `orchestrator local serve`
    yield Connection(remote, host, False, config.cluster_id, tuple(secrets), admin=admin)


@contextmanager
def open_services(
    config: BuildConfig,
    *,
    environ: Mapping[str, str],
    clock: Clock | None = None,
    languages: Collection[str] | None = None,
    spark: bool = False,
) -> Iterator[tuple[Connection, Storage]]:
    """Key Vault (if configured) -> storage (credentials resolved) -> workspace connection
    (``languages``: of the notebooks the build runs, and ``spark``: whether one uses Spark,
    for an embedded workspace's kernels)."""
    from orchestrator.adapters.keyvault import keyvault_for
    from orchestrator.masking import register_secret
    from orchestrator.storage.base import StorageAuth, storage_auth
    from orchestrator.storage.open import open_storage

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
            with connect(
                config,
                environ=environ,
                keyvault=keyvault,
                clock=clock,
                languages=languages,
                spark=spark,
            ) as conn:
                for value in conn.secrets:
                    register_secret(value)
                yield conn, storage
        finally:
            storage.close()
    finally:
        if keyvault is not None:
            keyvault.close()


def serve_local(
    state_dir: Path,
    *,
    port: int,
    token: str | None,
    token_env: str,
    faults_file: Path | None,
    cluster_start_delay: float,
    max_workers: int,
    out: TextIO,
) -> int:
    """``orchestrator local serve``: the local workspace on 127.0.0.1 until SIGINT/SIGTERM."""
    import json
    import signal
    import threading

    from orchestrator.local.server import FaultSettings, start_local_workspace

    faults = FaultSettings()
    if faults_file is not None:
        try:
            faults = FaultSettings.from_dict(json.loads(faults_file.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"{faults_file}: invalid fault settings: {exc}") from None
    try:
        workspace = start_local_workspace(
            state_dir,
            port=port,
            token=token,
            faults=faults,
            cluster_start_delay=cluster_start_delay,
            max_workers=max_workers,
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    workspace.warm()  # warm kernels from the start, as an instance pool keeps idle capacity
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    out.write(f"Local workspace on {workspace.url} (state in {state_dir})\n")
    out.write(f"export DATABRICKS_HOST={workspace.url}\n")
    if token is None and out.isatty():
        out.write(f"export DATABRICKS_TOKEN={workspace.token}\n")
    elif token is None:
        out.write(f"Token: random (set ${token_env} to choose it)\n")
    else:
        out.write(f"Token: taken from ${token_env}\n")
    out.flush()
    try:
        stop.wait()
    finally:
        out.write("Stopping: cancelling active runs\n")
        out.flush()
        workspace.stop()
    return EXIT_OK


def setup_local(*, out: TextIO, profiles: Sequence[str] = (), every: bool = False) -> int:
    """``orchestrator local setup``: make the Python environment of the default runtime
    profile, of the ``profiles`` named, or of ``every`` locked one, where missing (a line each
    as it goes), and say where they are. Only the default by default: CI and a first setup pay
    for one environment, and a run on another runtime makes its own on first use. Idempotent:
    a second run only looks (milliseconds)."""
    from orchestrator.local.runtime.python_envs import (
        RuntimeEnvError,
        ensure_environment,
        select_environments,
    )

    def say(line: str) -> None:
        out.write(f"{line}\n")
        out.flush()

    try:
        environments = select_environments(profiles, every=every)
    except ValueError as exc:
        raise UsageError(f"local setup: {exc}") from None
    for environment in environments:
        try:
            python = ensure_environment(environment, progress=say)
        except RuntimeEnvError as exc:
            raise InfrastructureError(
                f"local setup: runtime {environment.profile.version}: {exc}"
            ) from None
        say(f"runtime {environment.profile.version}: {python.parent.parent}")
    return EXIT_OK


def prune_local(
    state_dir: Path, *, keep_runs: int | None, max_age_days: float | None, out: TextIO
) -> int:
    """``orchestrator local prune``: apply the local workspace's run retention now, and empty
    its install caches (built Python environments and uv's cache, which the next install
    fills again).

    Unset limits take the workspace's defaults (:class:`orchestrator.local.Retention`); it is
    safe while a workspace serves the same state dir (active runs are never touched; a run
    that already linked a cached environment keeps its copy).
    """
    from orchestrator.local.runtime.env_cache import clear_cache
    from orchestrator.local.state.retention import Retention, prune_state_dir

    defaults = Retention()
    try:
        retention = Retention(
            max_runs=defaults.max_runs if keep_runs is None else keep_runs,
            max_age_days=defaults.max_age_days if max_age_days is None else max_age_days,
        )
    except ValueError as exc:
        raise UsageError(f"local prune: {exc}") from None
    try:
        report = prune_state_dir(state_dir, retention)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    out.write(f"{state_dir}: {report.summary()}\n")
    freed = clear_cache(state_dir)
    out.write(f"{state_dir}: install caches emptied ({freed / 1024**2:.1f} MB freed)\n")
    return EXIT_OK
