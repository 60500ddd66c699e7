"""Assembly of the local workspace: store, scheduler, APIs and the HTTP server.

:class:`LocalWorkspace` is the running server; :func:`start_local_workspace` (re-exported by
``orchestrator.local``) starts one in this process on a free 127.0.0.1 port, or the given one.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from orchestrator.local.admin import Admin
from orchestrator.local.clusters import Clusters, ClusterSpec
from orchestrator.local.dbfs_api import DbfsApi
from orchestrator.local.faults import Faults, FaultSettings
from orchestrator.local.http import Response, Router, serve_http
from orchestrator.local.jobs_api import JobsApi
from orchestrator.local.pages import Pages
from orchestrator.local.scheduler import Scheduler, TaskExecutor
from orchestrator.local.secrets_api import SecretsApi
from orchestrator.local.store import Store
from orchestrator.local.tasks import NotebookTaskExecutor, export_executed_html
from orchestrator.local.workspace_api import WorkspaceApi

__all__ = [
    "LocalWorkspace",
    "LocalWorkspaceSettings",
    "start_local_workspace",
    "temporary_workspace",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalWorkspaceSettings:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port
    token: str | None = None  # None = a random token, readable from LocalWorkspace.token
    clusters: tuple[ClusterSpec, ...] = (ClusterSpec(),)
    cluster_start_delay: float = 2.0
    max_workers: int = 4
    faults: FaultSettings = field(default_factory=FaultSettings)


class LocalWorkspace:
    """A running local workspace. Use as a context manager or call :meth:`stop`."""

    def __init__(
        self, settings: LocalWorkspaceSettings, *, executor: TaskExecutor | None = None
    ) -> None:
        if settings.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the local workspace listens on loopback only")
        self.settings = settings
        self.token = settings.token or "local-" + secrets.token_hex(16)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.state_dir)
        self.faults = Faults(settings.faults)
        self.clusters = Clusters(settings.clusters, start_delay=settings.cluster_start_delay)
        self.scheduler = Scheduler(
            self.store,
            self.clusters,
            executor or NotebookTaskExecutor(self.store),
            max_workers=settings.max_workers,
        )
        router = Router()
        self._server, self._thread = serve_http(
            host=settings.host,
            port=settings.port,
            router=router,
            token=self.token,
            faults=self.faults,
            public_paths=("/.well-known/", "/jobs/", "/runs/"),
        )
        port = self._server.server_address[1]
        self.url = f"http://{settings.host}:{port}"
        self.port = int(port)
        self.jobs = JobsApi(
            self.store, self.scheduler, base_url=self.url, export_html=export_executed_html
        )
        WorkspaceApi(self.store).register(router)
        DbfsApi(self.store).register(router)
        self.jobs.register(router)
        self.clusters.register(router)
        SecretsApi(self.store).register(router)
        Pages(self.jobs).register(router)
        Admin(self.faults).register(router)
        router.plain("GET", r"/\.well-known/databricks-config", lambda req: Response.json({}))
        router.plain(
            "GET",
            r"/",
            lambda req: Response.html(
                "<h1>Local Databricks-compatible workspace</h1><p>See /api/2.x/...</p>"
            ),
        )
        log.info("local workspace listening on %s (state in %s)", self.url, settings.state_dir)

    def stop(self) -> None:
        """Cancel active runs (their kernels die), stop serving and close the state."""
        self.scheduler.shutdown()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self.store.close()

    def __enter__(self) -> LocalWorkspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_local_workspace(
    state_dir: Path,
    *,
    port: int = 0,
    token: str | None = None,
    faults: FaultSettings | None = None,
    cluster_start_delay: float = 2.0,
    max_workers: int = 4,
    clusters: tuple[ClusterSpec, ...] = (ClusterSpec(),),
    executor: TaskExecutor | None = None,
) -> LocalWorkspace:
    """Start a local workspace in this process on 127.0.0.1 (a free port unless given)."""
    settings = LocalWorkspaceSettings(
        state_dir=state_dir,
        port=port,
        token=token,
        clusters=clusters,
        cluster_start_delay=cluster_start_delay,
        max_workers=max_workers,
        faults=faults or FaultSettings(),
    )
    return LocalWorkspace(settings, executor=executor)


@contextmanager
def temporary_workspace(**kwargs: object) -> Iterator[LocalWorkspace]:
    """A local workspace with its state in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="orchestrator-local-") as tmp:
        workspace = start_local_workspace(Path(tmp), **kwargs)  # type: ignore[arg-type]
        try:
            yield workspace
        finally:
            workspace.stop()
