"""Assembly of the local workspace: store, scheduler, APIs and the HTTP server.

:class:`LocalWorkspace` is the running server; :func:`start_local_workspace` (re-exported by
``orchestrator.local.server``) starts one in this process on a free 127.0.0.1 port, or the
given one.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from orchestrator.local.api.cluster_policies_api import ClusterPoliciesApi
from orchestrator.local.api.clusters_api import ClustersApi
from orchestrator.local.api.dbfs_api import HANDLE_IDLE_SECONDS, DbfsApi
from orchestrator.local.api.files_api import FilesApi
from orchestrator.local.api.git_credentials_api import GitCredentialsApi
from orchestrator.local.api.instance_pools_api import InstancePoolsApi
from orchestrator.local.api.jobs_api import JobsApi
from orchestrator.local.api.mlflow_api import MlflowApi
from orchestrator.local.api.mlflow_artifacts import MlflowArtifacts
from orchestrator.local.api.permissions_api import PermissionsApi
from orchestrator.local.api.principals import Principals, ServicePrincipal
from orchestrator.local.api.repos_api import ReposApi
from orchestrator.local.api.resource_permissions import (
    ResourceKind,
    ResourcePermissions,
    job_kind,
)
from orchestrator.local.api.routing import Response, Router
from orchestrator.local.api.scim_api import ScimApi
from orchestrator.local.api.secrets_api import SecretsApi
from orchestrator.local.api.workspace_api import WorkspaceApi
from orchestrator.local.jobs.control_tasks import ControlFlowTasks
from orchestrator.local.jobs.execution_contexts import ExecutionContexts
from orchestrator.local.jobs.git_snapshots import GitSnapshots, GitSourceTasks
from orchestrator.local.jobs.notebook_tasks import NotebookTaskExecutor, export_executed_html
from orchestrator.local.jobs.scheduler import Scheduler
from orchestrator.local.jobs.task_execution import TaskExecutor
from orchestrator.local.runtime.clusters import Clusters, ClusterSpec
from orchestrator.local.runtime.lifetime import (
    drop_mark,
    new_mark,
    reap_leftovers,
    sole_server,
    start_watchdog,
)
from orchestrator.local.runtime.mlflow_server import MlflowServer
from orchestrator.local.server.admin import Admin
from orchestrator.local.server.connections import ConnectionLimits
from orchestrator.local.server.faults import Faults, FaultSettings
from orchestrator.local.server.git_sources_admin import GitSourcesAdmin
from orchestrator.local.server.listener import serve_http
from orchestrator.local.state.documents import Documents
from orchestrator.local.state.git_folders import GitFolders
from orchestrator.local.state.git_store import GitStore
from orchestrator.local.state.records import DEFAULT_USER_NAME
from orchestrator.local.state.retention import PruneReport, Retention, prune
from orchestrator.local.state.store import Store
from orchestrator.local.ui.mlflow_ui import MlflowUi
from orchestrator.local.ui.pages import Pages

__all__ = [
    "LocalWorkspace",
    "LocalWorkspaceSettings",
    "ServicePrincipal",
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
    retention: Retention = field(default_factory=Retention)
    keep_run_scratch: bool = False  # debugging: keep each task's scratch folder
    kernel_pool: bool = True  # warm kernels, up to max_workers idle per language
    #: the workspace's one user: SCIM ``Me``, ``/Users/<user_name>``, every creator
    user_name: str = DEFAULT_USER_NAME
    #: bounds of the HTTP server's connections (count, idle and request timeouts)
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    #: a DBFS ``create`` handle idle this long expires, with its temporary file
    dbfs_handle_idle_seconds: float = HANDLE_IDLE_SECONDS
    #: the token is this service principal's: it is the caller (SCIM ``Me``, creators), is
    #: listed by SCIM ``ServicePrincipals`` and has its home ``/Users/<application id>``
    service_principal: ServicePrincipal | None = None


class LocalWorkspace:
    """A running local workspace. Use as a context manager or call :meth:`stop`."""

    def __init__(
        self, settings: LocalWorkspaceSettings, *, executor: TaskExecutor | None = None
    ) -> None:
        if settings.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the local workspace listens on loopback only")
        name = settings.user_name
        if not name or "/" in name or name in (".", "..") or not name.isprintable():
            raise ValueError(f"not a user name for the local workspace: {name!r}")
        sp = settings.service_principal
        if sp is not None and (not sp.application_id or "/" in sp.application_id):
            raise ValueError(f"not an application id: {sp.application_id!r}")
        self.settings = settings
        self.token = settings.token or "local-" + secrets.token_hex(16)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self._start_lifetime(settings.state_dir)
        try:
            self._open_state(executor)
            self._serve()
        except BaseException:
            if hasattr(self, "scheduler"):
                self.scheduler.shutdown(timeout=2)
                if self._notebooks is not None:
                    self._notebooks.close()
                self.clusters.close()
            if hasattr(self, "mlflow"):
                self.mlflow.stop()
            if hasattr(self, "store"):
                self.store.close()
            self._end_lifetime()
            raise
        self._pruner = threading.Thread(target=self._prune_periodically, name="prune", daemon=True)
        self._pruner.start()
        self._handle_sweeper = threading.Thread(
            target=self.dbfs.sweep_handles, args=(self._stopped,), name="dbfs-handles", daemon=True
        )
        self._handle_sweeper.start()
        log.info("local workspace listening on %s (state in %s)", self.url, settings.state_dir)

    def _open_state(self, executor: TaskExecutor | None) -> None:
        settings = self.settings
        self.store = Store(settings.state_dir)
        self.documents = Documents(self.store)
        self.principals = Principals(settings.user_name, settings.service_principal)
        # what a new workspace has: the users' folder, the principals' homes and /Shared
        self.store.ensure_directories("/Users", *self.principals.homes, "/Shared")
        self.git_store = GitStore(self.store)
        self.git_folders = GitFolders(self.store, self.git_store)
        self.git_snapshots = GitSnapshots(self.store, self.git_store, sweep=self._sole_server)
        self.faults = Faults(settings.faults)
        #: MLflow's tracking server, started by the first MLflow request (never otherwise)
        self.mlflow = MlflowServer(settings.state_dir)
        self.clusters = Clusters(
            settings.clusters,
            start_delay=settings.cluster_start_delay,
            spark_state_dir=self.store.state_dir,
            documents=self.documents,
            creator=self.principals.caller,
        )
        #: the clusters' execution contexts, shared by tasks and their notebook.run children
        contexts = ExecutionContexts()
        if executor is None:
            notebooks = NotebookTaskExecutor(
                self.store,
                contexts=contexts,
                keep_scratch=settings.keep_run_scratch,
                pool_size=settings.max_workers if settings.kernel_pool else 0,
                user_name=self.principals.caller,
            )
            self.clusters.on_running = notebooks.warm
            notebooks.cluster_environment = self.clusters.environment
            self._notebooks: NotebookTaskExecutor | None = notebooks
            executor = notebooks
        else:
            self._notebooks = None
        # a git_source run's Git tasks run from its snapshot, whatever runs the tasks
        executor = GitSourceTasks(executor, self.git_snapshots)
        #: condition and run-job tasks are the engine's own; every other task goes to executor
        self.control = ControlFlowTasks(executor)
        self.scheduler = Scheduler(
            self.store,
            self.clusters,
            self.control,
            max_workers=settings.max_workers,
            contexts=contexts,
        )
        self.scheduler.on_run_start = self.git_snapshots.prepare
        self.scheduler.on_run_end = self.git_snapshots.release
        self._stopped = threading.Event()
        self.prune()  # after recovery: runs a killed server left active have ended

    def _serve(self) -> None:
        #: every route the workspace serves (the hostile-input tests walk them all)
        self.router = router = Router()
        self._server, self._thread = serve_http(
            host=self.settings.host,
            port=self.settings.port,
            router=router,
            token=self.token,
            faults=self.faults,
            public_paths=("/.well-known/",),
            limits=self.settings.connections,
        )
        port = self._server.server_address[1]
        self.url = f"http://{self.settings.host}:{port}"
        self.port = int(port)
        self.jobs = JobsApi(
            self.store,
            self.scheduler,
            base_url=self.url,
            export_html=export_executed_html,
            user_name=self.principals.caller,
            documents=self.documents,
        )
        self.scheduler.on_task_end = self.jobs.prerender
        self.control.start_job = self.jobs.trigger_run
        self.control.await_run = self.jobs.await_run
        if self._notebooks is not None:
            self._notebooks.bind_run_pages(self.jobs.run_url)
            self._notebooks.workspace_environment = {
                "DATABRICKS_HOST": self.url,
                "DATABRICKS_TOKEN": self.token,
                "MLFLOW_TRACKING_URI": "databricks",
            }
            self.jobs.cancel_child = self._notebooks.child_runs.cancel
        principals, documents = self.principals, self.documents
        resources = ResourcePermissions(documents, principals, self._resource_kinds())
        protected = ("/Users", "/Shared", *principals.homes)
        WorkspaceApi(self.store, self.git_folders, protected=protected).register(router)
        ReposApi(
            self.store, self.git_store, self.git_folders, user_name=principals.caller
        ).register(router)
        GitCredentialsApi(self.store, self.git_store).register(router)
        self.dbfs = DbfsApi(self.store, handle_idle_seconds=self.settings.dbfs_handle_idle_seconds)
        if self._sole_server:  # no other server's handle is open: every upload left is abandoned
            self.dbfs.remove_abandoned()
        self.dbfs.register(router)
        files = FilesApi(self.store)
        files.register(router)
        self.jobs.on_job_deleted = lambda job_id: resources.forget("jobs", str(job_id))
        self.jobs.register(router)
        ClustersApi(
            self.clusters,
            documents=documents,
            principals=principals,
            on_delete=lambda cluster_id: resources.forget("clusters", cluster_id),
        ).register(router)
        InstancePoolsApi(
            documents,
            principals=principals,
            on_delete=lambda pool_id: resources.forget("instance-pools", pool_id),
        ).register(router)
        ClusterPoliciesApi(
            documents,
            principals=principals,
            on_delete=lambda policy_id: resources.forget("cluster-policies", policy_id),
        ).register(router)
        SecretsApi(self.store, documents=documents, principals=principals).register(router)
        ScimApi(principals).register(router)
        PermissionsApi(self.store, principals=principals, resources=resources).register(router)
        store = self.store

        def folder_exists(path: str) -> bool:
            found = store.get_object(path) if path != "/" else None
            return path == "/" or (found is not None and found.object_type in ("DIRECTORY", "REPO"))

        mlflow = MlflowApi(
            self.mlflow,
            MlflowArtifacts(self.store.state_dir, self.url),
            folder_exists=folder_exists,
        )
        mlflow.register(router)
        files.models = mlflow.model_files  # Unity Catalog's model files go with its registry
        Pages(self.jobs, mlflow_runs=mlflow.runs_of_task).register(router)
        MlflowUi(mlflow).register(router)
        Admin(self.faults).register(router)
        GitSourcesAdmin(self.git_store).register(router)
        router.plain("GET", r"/\.well-known/databricks-config", lambda req: Response.json({}))

    def _resource_kinds(self) -> tuple[ResourceKind, ...]:
        """The jobs and compute objects the Permissions API serves, and their creators."""
        store, clusters, documents = self.store, self.clusters, self.documents

        def job_creator(job_id: str) -> str | None:
            job = store.get_job(int(job_id)) if job_id.isdigit() else None
            return None if job is None else str(job["creator_user_name"])

        def cluster_creator(cluster_id: str) -> str | None:
            if not clusters.exists(cluster_id):
                return None
            return str(clusters.info(cluster_id).get("creator_user_name") or "")

        def stored(kind: str, field: str) -> Callable[[str], str | None]:
            def creator(object_id: str) -> str | None:
                doc = documents.get(kind, object_id)
                if doc is None:
                    return None
                return str(doc.get(field) or self.principals.caller)

            return creator

        manage = {"CAN_MANAGE": "Can manage it: edit, delete and change its permissions"}
        return (
            job_kind(job_creator),
            ResourceKind(
                "clusters",
                "cluster",
                "Cluster",
                {
                    "CAN_ATTACH_TO": "Can attach notebooks to the cluster",
                    "CAN_RESTART": "Can attach to, start, restart and terminate the cluster",
                    **manage,
                },
                cluster_creator,
                "CAN_MANAGE",
            ),
            ResourceKind(
                "instance-pools",
                "instance-pool",
                "Instance pool",
                {"CAN_ATTACH_TO": "Can attach clusters to the pool", **manage},
                stored("instance-pool", "creator"),
                "CAN_MANAGE",
            ),
            ResourceKind(
                "cluster-policies",
                "cluster-policy",
                "Cluster policy",
                {"CAN_USE": "Can create clusters with the policy"},
                stored("cluster-policy", "creator_user_name"),
                "CAN_USE",
                admins_level="CAN_USE",
            ),
        )

    def _start_lifetime(self, state_dir: Path) -> None:
        """End what a killed workspace here left running (unless another one serves this
        state dir), then start the watchdog that ends ours if this process dies."""
        self._sole = sole_server(state_dir)
        #: no other workspace serves this state dir: what a killed one left may be removed
        self._sole_server = bool(self._sole.__enter__())
        if self._sole_server:
            reap_leftovers(state_dir)
        else:
            log.warning("another local workspace serves %s: not ending its processes", state_dir)
        self._mark = new_mark(state_dir)
        self._watchdog = start_watchdog(self._mark)

    def warm(self, languages: Collection[str] | None = None, *, spark: bool = False) -> None:
        """Start warming up now rather than when a cluster is first used: the kernel pool
        fills in the background, with kernels of ``languages`` only when the coming runs' are
        known, and Spark notebooks' kernels are made ready when a coming run uses ``spark``
        (returns at once). The notebook exporter loads when the first task starts."""
        if self._notebooks is not None:
            self._notebooks.warm(languages, spark=spark)

    def prune(self) -> PruneReport:
        """Apply the retention settings now (see :mod:`orchestrator.local.state.retention`)."""
        return prune(self.store, self.settings.retention, measure=False)

    def _prune_periodically(self) -> None:
        while not self._stopped.wait(self.settings.retention.interval_seconds):
            try:
                self.prune()
            except Exception:  # a failed pass must not end the thread: the next one retries
                log.exception("pruning the local workspace's state failed")

    def stop(self) -> None:
        """Cancel active runs (their kernels die), stop serving and close the state."""
        self._stopped.set()
        self.scheduler.shutdown()
        self.clusters.begin_close()  # the Spark engines end while the rest stops
        if self._notebooks is not None:
            self._notebooks.close()  # the kernel pool's idle kernels
        self.clusters.close()  # their Spark engines, once they ended
        self._server.shutdown()
        self._server.server_close()
        self.mlflow.stop()  # after the server: no request can start it again
        self._thread.join(5)
        self._pruner.join(5)
        self._handle_sweeper.join(5)
        self.store.close()
        self._end_lifetime()

    def _end_lifetime(self) -> None:
        """Close the watchdog's pipe: it ends whatever is left (nothing, after a clean stop)
        and exits; release the state dir."""
        if self._watchdog.stdin is not None:
            self._watchdog.stdin.close()
        try:
            self._watchdog.wait(10)
        except subprocess.TimeoutExpired:
            self._watchdog.kill()
            self._watchdog.wait(5)
        drop_mark(self._mark)
        self._sole.__exit__(None, None, None)

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
    retention: Retention | None = None,
    keep_run_scratch: bool = False,
    user_name: str = DEFAULT_USER_NAME,
    connections: ConnectionLimits | None = None,
    dbfs_handle_idle_seconds: float = HANDLE_IDLE_SECONDS,
    service_principal: ServicePrincipal | None = None,
) -> LocalWorkspace:
    """Start a local workspace in this process on 127.0.0.1 (a free port unless given)."""
    settings = LocalWorkspaceSettings(
        user_name=user_name,
        connections=connections or ConnectionLimits(),
        dbfs_handle_idle_seconds=dbfs_handle_idle_seconds,
        service_principal=service_principal,
        retention=retention or Retention(),
        keep_run_scratch=keep_run_scratch,
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
