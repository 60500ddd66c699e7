"""The one door to Databricks: :class:`DatabricksWorkspace`, over a databricks-sdk client.

Every call the orchestrator makes to a workspace (the configured one, or the local workspace
over HTTP) goes through this class, and so does the translation of SDK errors
(:mod:`orchestrator.adapters.databricks.sdk_errors`): build, the step commands, collect and cleanup
take a ``DatabricksWorkspace``, never a ``WorkspaceClient``. It implements the protocols of
:mod:`orchestrator.ports` (``Workspace``: ``BuildWorkspace``, ``WorkspaceTree``, ``RunControl``)
structurally.

Workspace files are written with ``workspace.import_`` (JSON with base64 content), which the SDK
retries on 429/503; its multipart ``upload`` is not retried. A deploy creates the leaf folders
first (one ``mkdirs`` each, in parallel), then imports the files with bounded concurrency.
"""

from __future__ import annotations

import base64
import importlib
import logging
import posixpath
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from orchestrator.adapters.databricks import (
    dbfs,
    identity,
    model_registry,
    repos,
    runs,
    uc_model_registry,
)
from orchestrator.adapters.databricks.client import SdkClient, lean_import, new_client
from orchestrator.adapters.databricks.retries import (
    DEFAULT_BUDGET,
    RetryBudgetExceeded,
    RetryReporter,
)
from orchestrator.adapters.databricks.run_views import RunView
from orchestrator.adapters.databricks.sdk_errors import is_not_found, sdk_errors
from orchestrator.adapters.databricks.values import (
    ActiveRun,
    BuildJob,
    DeployItem,
    Entry,
    Grant,
    LoggedModel,
    RegisteredVersion,
    TaskOutput,
)
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import InfrastructureError, TimeoutExpired, UsageError
from orchestrator.ratelimit import TokenBucket
from orchestrator.signals import submit_all

if TYPE_CHECKING:
    from databricks.sdk.clock import Clock as SdkClock

__all__ = ["DatabricksWorkspace", "open_workspace"]

log = logging.getLogger(__name__)

_POLLING = runs.Polling()
_DELETE = "/api/2.0/workspace/delete"
#: what :func:`open_workspace` imports of the SDK (see .client)
_CLIENT_MODULES = (
    "databricks.sdk.config",
    "databricks.sdk.core",
    "databricks.sdk.mixins.jobs",
    "databricks.sdk.mixins.workspace",
    "databricks.sdk.mixins.compute",
)
#: seconds the SDK's host-metadata probe may retry an unreachable host: at most a quarter of
#: ``timeouts.connect``, which counts from the probe on (the retry reporter's one deadline)
_PROBE_BUDGET = 5


def preload_sdk() -> None:
    """Start importing databricks-sdk in a background thread and return at once.

    The import takes 1-3 s on a small CI agent (every service module defines its dataclasses);
    a caller that has other work first (starting the local workspace, say) overlaps the two.
    :func:`open_workspace` then finds the module imported, or waits for the import to finish
    (Python's import lock)."""

    def load() -> None:
        try:
            lean_import()
            for module in _CLIENT_MODULES:
                importlib.import_module(module)
        except ImportError:  # open_workspace reports it
            log.debug("databricks-sdk could not be preloaded", exc_info=True)

    threading.Thread(target=load, name="preload-sdk", daemon=True).start()


def open_workspace(
    settings: Mapping[str, Any],
    *,
    pool_size: int,
    clock: Clock | None = None,
    connect: float = 60.0,
) -> DatabricksWorkspace:
    """A workspace reached with databricks-sdk's unified auth; ``settings`` are its ``Config``
    fields (host, token, auth_type, profile, azure_* ...). A configuration the SDK rejects is a
    UsageError. The SDK's retries are reported and bounded by a :class:`RetryReporter`:
    ``connect`` seconds for a host that has not answered yet (``timeouts.connect``)."""
    lean_import()
    from databricks.sdk.config import Config

    host = str(settings.get("host") or settings.get("profile") or "the workspace")
    retries = RetryReporter(host, clock=clock, connect=connect, budget=DEFAULT_BUDGET)
    try:
        # Config() probes the host (/.well-known/databricks-config) with its own silent
        # retries, under the retry budget it is given: so a short one for the probe, which
        # falls back to the explicit settings, and the real one for the client's requests
        config = Config(
            **settings,
            # the SDK sizes a pool with max_connection_pools (its pool_maxsize) and keeps
            # max_connections_per_pool pools: enough connections for every thread of a deploy
            max_connection_pools=pool_size,
            max_connections_per_pool=pool_size,
            retry_timeout_seconds=max(1, min(_PROBE_BUDGET, int(connect / 4))),
            clock=cast("SdkClock", retries),  # duck-typed: time() and sleep()
        )
        config.retry_timeout_seconds = int(retries.budget) + 1
        client = new_client(config)
    except ValueError as exc:  # the SDK's own config validation
        raise UsageError(f"workspace authentication: {exc}") from exc
    return DatabricksWorkspace(client, clock=clock, retries=retries)


class DatabricksWorkspace:
    """A Databricks workspace as the orchestrator uses it.

    ``clock`` paces the waits (tests pass a fake one); ``read_limiter`` throttles listing and
    reading (cleanup's discovery passes one, to stay under the service's rate limits).
    """

    def __init__(
        self,
        client: SdkClient,
        *,
        clock: Clock | None = None,
        read_limiter: TokenBucket | None = None,
        retries: RetryReporter | None = None,
    ) -> None:
        self.client = client
        self.clock = clock or SystemClock()
        self.read_limiter = read_limiter
        #: reports and bounds the SDK's retries; ``retries.listen(say)`` sends its lines
        self.retries = retries or RetryReporter(client.config.host or "the workspace")

    # -- jobs, runs and the cluster ------------------------------------------------------------

    def ensure_cluster_running(
        self, cluster_id: str, *, timeout: float, on_wait: Callable[[str], None] | None = None
    ) -> bool:
        return runs.ensure_cluster_running(
            self.client, cluster_id, timeout=timeout, clock=self.clock, on_wait=on_wait
        )

    def create_build_job(self, settings: Mapping[str, Any]) -> tuple[int, str]:
        return runs.create_build_job(self.client, settings)

    def run_build_job(self, job_id: int, *, idempotency_token: str) -> int:
        return runs.run_build_job(self.client, job_id, idempotency_token=idempotency_token)

    def delete_build_jobs(self, repo: str, build_id: str) -> int:
        return runs.delete_build_jobs(self.client, repo, build_id)

    def build_jobs(self) -> list[BuildJob]:
        return runs.build_jobs(self.client)

    def get_run(self, run_id: int) -> RunView:
        return runs.get_run(self.client, run_id)

    def wait_for_run(
        self,
        run_id: int,
        *,
        deadline: float | None,
        polling: runs.Polling = _POLLING,
        on_update: Callable[[RunView], None] | None = None,
    ) -> RunView:
        return runs.wait_for_run(
            self.client,
            run_id,
            deadline=deadline,
            clock=self.clock,
            polling=polling,
            on_update=on_update,
        )

    def cancel_run(self, run_id: int) -> RunView | None:
        """Cancel and wait until the run has ended; None if that could not be confirmed."""
        return runs.cancel_run(self.client, run_id, clock=self.clock)

    def find_build_run(self, repo: str, build_id: str) -> int | None:
        return runs.find_build_run(self.client, repo, build_id)

    def task_output(self, run_id: int) -> TaskOutput:
        return runs.task_output(self.client, run_id)

    def export_views(self, run_id: int) -> list[str]:
        return runs.export_views(self.client, run_id)

    # -- MLflow: the models a build registers, the runs cleanup deletes ------------------------

    def job_models(
        self, task_run_ids: Sequence[int], *, experiment: str | None
    ) -> list[LoggedModel]:
        """The models the MLflow runs of these task runs logged."""
        return model_registry.job_models(self.client, task_run_ids, experiment)

    def log_model_file(
        self, *, experiment: str, file: Path, run_name: str, tags: Mapping[str, str]
    ) -> LoggedModel:
        """``file`` logged as an MLflow model by a run of its own in ``experiment``."""
        return model_registry.log_model_file(
            self.client, experiment=experiment, file=file, run_name=run_name, tags=tags
        )

    def register_model(
        self,
        *,
        registry: str,
        name: str,
        model: LoggedModel,
        tags: Mapping[str, str],
        alias: str | None,
    ) -> RegisteredVersion:
        """A new version of ``name`` from ``model`` in the workspace registry or Unity
        Catalog, tagged, with ``alias`` set on it."""
        if registry == "unity-catalog":
            return uc_model_registry.register_uc(
                self.client, name=name, model=model, tags=tags, alias=alias
            )
        return model_registry.register(
            self.client, name=name, model=model, tags=tags, alias=alias, clock=self.clock
        )

    def build_task_runs(self, repo: str, build_id: str) -> list[int]:
        return runs.build_task_runs(self.client, repo, build_id)

    def delete_mlflow_runs(self, task_run_ids: Sequence[int], *, experiment: str | None) -> int:
        """Delete the MLflow runs these task runs logged (never one a version came from)."""
        return model_registry.delete_runs_of(self.client, task_run_ids, experiment=experiment)

    # -- the build's identity and the build root's permissions ----------------------------------

    def current_user(self) -> str:
        """The identity the build runs as (SCIM ``Me``): a user's name or a service
        principal's application id, whose home is ``/Users/<it>``."""
        return identity.current_user(self.client)

    def writers(self, path: str) -> list[Grant]:
        """Who may change the folder at ``path`` (CAN_EDIT or CAN_MANAGE), directly or by
        inheritance; [] when the folder does not exist."""
        return identity.writers(self.client, path)

    def restrict(self, path: str, principal: str) -> None:
        """Make ``principal`` the only direct grantee of the folder at ``path`` (CAN_MANAGE);
        what it inherits from its parents stays (the Permissions API cannot remove that)."""
        identity.restrict(self.client, path, principal)

    # -- RunControl (cleanup) ------------------------------------------------------------------

    def active(self, repo: str) -> list[ActiveRun]:
        return runs.active_runs(self.client, repo)

    def cancel(self, run_id: int) -> bool:
        """Ask the run to stop; False when it no longer exists."""
        try:
            with sdk_errors(f"cancelling run {run_id}"):
                self.client.jobs.cancel_run(run_id)
        except InfrastructureError as exc:
            if is_not_found(exc):
                return False
            raise
        return True

    def wait_ended(self, run_ids: Sequence[int], *, timeout: float) -> set[int]:
        """Wait (at most ``timeout`` seconds) until the runs end; returns those that did."""
        deadline = self.clock.monotonic() + timeout
        ended: set[int] = set()
        for run_id in run_ids:
            try:
                self.wait_for_run(run_id, deadline=deadline, polling=runs.Polling(0.25, 1.5, 2.0))
            except TimeoutExpired:
                continue  # not confirmed before the deadline
            except InfrastructureError as exc:
                if not is_not_found(exc):
                    continue  # gone counts as ended; anything else is not confirmed
            ended.add(run_id)
        return ended

    # -- the workspace tree (WorkspaceTree for cleanup; deploy and files for the build) --------

    def list(self, path: str) -> list[Entry] | None:
        """The children of a folder; None when it does not exist."""
        self._read()
        try:
            with sdk_errors(f"listing {path}"):
                objects = list(self.client.workspace.list(path))
        except InfrastructureError as exc:
            if is_not_found(exc):
                return None
            raise
        out = []
        for o in objects:
            if not o.path:
                continue
            kind = o.object_type.value if o.object_type else ""
            stamp = datetime.fromtimestamp(o.modified_at / 1000, UTC) if o.modified_at else None
            out.append(Entry(posixpath.basename(o.path), kind in ("DIRECTORY", "REPO"), stamp))
        return out

    def read_text(self, path: str) -> str | None:
        """A workspace file's or notebook's source text; None when it does not exist."""
        from databricks.sdk.service.workspace import ExportFormat

        self._read()
        try:
            with sdk_errors(f"reading {path}"):
                data = self.client.workspace.download(path, format=ExportFormat.AUTO).read()
        except InfrastructureError as exc:
            if is_not_found(exc):
                return None
            raise
        return data.decode("utf-8", errors="replace")

    def write_text(self, path: str, text: str) -> None:
        """Write a workspace file, replacing any existing one; its folder is created only when
        the import answers "not found". Cleanup's journals are rewritten in a folder that is
        there after the first run, so this is one request where :meth:`write_file` is two (the
        Databricks CLI's ``WorkspaceFilesClient.Write`` does the same: import, then mkdirs
        and import again on a 404)."""
        try:
            self._import(path, text.encode(), None)
        except InfrastructureError as exc:
            if not is_not_found(exc):
                raise
            self._mkdirs(posixpath.dirname(path))
            self._import(path, text.encode(), None)

    def write_file(self, path: str, data: bytes, *, language: str | None = None) -> None:
        """Write a file, or a notebook in ``language``, creating its folder; replaces any."""
        with sdk_errors(f"writing {path}"):
            self.client.workspace.mkdirs(posixpath.dirname(path))
        self._import(path, data, language)

    def delete(self, path: str) -> bool:
        """Delete a folder, file or Git folder recursively; False when it was already gone.
        A Git folder the Workspace API will not delete goes through the Repos API.

        The first try is a plain POST (:mod:`.plain_post`, a third of the SDK's client CPU,
        which a cleanup of hundreds of builds is bound by); any answer but success or "not
        found", and every try after the workspace pushed back, goes through the SDK as every
        other call."""
        plain = getattr(self.client, "plain", None)
        if plain is not None and not self.retries.gone:
            answered: int | None = plain(_DELETE, {"path": path, "recursive": True})
            if answered in (200, 404):  # RESOURCE_DOES_NOT_EXIST: gone already
                self.retries.note_answer()
                return answered == 200
        try:
            with sdk_errors(f"deleting {path}"):
                self.client.workspace.delete(path, recursive=True)
        except InfrastructureError as exc:
            if is_not_found(exc):
                return False
            if isinstance(exc, RetryBudgetExceeded):  # no answer: no Git folder lookup either
                raise
            if repos.delete_git_folder(self.client, path):
                return True
            raise
        return True

    def put_dbfs(self, path: str, data: bytes) -> None:
        dbfs.put_file(self.client, path, data)

    # -- Git folders and Git credentials ---------------------------------------------------------

    def git_credential_providers(self) -> set[str]:
        return repos.credential_providers(self.client)

    def add_git_credential(self, provider: str, username: str) -> None:
        repos.add_credential(self.client, provider, username)

    def create_git_folder(
        self, *, url: str, provider: str, path: str, sparse: Sequence[str] = ()
    ) -> int:
        return repos.create_git_folder(
            self.client, url=url, provider=provider, path=path, sparse=sparse
        )

    def check_out(self, repo_id: int, *, branch: str) -> str | None:
        return repos.check_out(self.client, repo_id, branch=branch)

    def deploy(
        self,
        folders: Sequence[str],
        items: Sequence[DeployItem],
        *,
        concurrency: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Create ``folders`` (leaves only, so no two calls create one parent), then import
        ``items`` with ``concurrency`` requests at a time; stops at the first failure."""
        workers = max(1, concurrency)
        # submit_all: a signal never leaves a worker the pool would not wait for
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mkdirs") as pool:
            made = submit_all(pool, self._mkdirs, folders)
            try:
                for future in made:
                    future.result()
            except BaseException:
                for f in made:
                    f.cancel()
                raise

        def send(item: DeployItem) -> None:
            self._import(item.target, item.source.read_bytes(), item.language)

        done = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deploy") as pool:
            futures = submit_all(pool, send, items)
            try:
                for future in as_completed(futures):
                    future.result()
                    done += 1
                    if progress is not None:
                        progress(done, len(items))
            except BaseException:  # a failure, or BuildCancelled: send no more
                for f in futures:
                    f.cancel()
                raise

    def mkdirs(self, path: str) -> None:
        """Create the folder ``path`` and its parents (nothing when it exists)."""
        self._mkdirs(path)

    def _mkdirs(self, path: str) -> None:
        with sdk_errors(f"workspace mkdirs {path}"):
            self.client.workspace.mkdirs(path)

    def _import(self, path: str, data: bytes, language: str | None) -> None:
        from databricks.sdk.service.workspace import ImportFormat, Language

        content = base64.b64encode(data).decode()
        with sdk_errors(f"workspace import {path}"):
            if language is not None:
                self.client.workspace.import_(
                    path,
                    content=content,
                    format=ImportFormat.SOURCE,
                    language=Language(language),
                    overwrite=True,
                )
            else:
                self.client.workspace.import_(
                    path, content=content, format=ImportFormat.AUTO, overwrite=True
                )

    def _read(self) -> None:
        if self.read_limiter is not None:
            self.read_limiter.acquire()
