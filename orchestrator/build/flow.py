"""``orchestrator build``: from a checkout to published test results, with no run left behind.

:func:`prepare` does everything that needs no service (config, CI context, job template, deploy
and upload plans, changed-notebook selection) and fails with a :class:`UsageError` before any
remote call; ``orchestrator plan`` prints its result. :func:`execute` then runs the steps:
cluster, job, deploy, upload, run, wait, collect, publish, clean. Whatever happens after the
run has started (a failure, the build timeout, SIGINT/SIGTERM), the run is cancelled and waited
for before the process exits, and the build's folders are removed unless ``keep`` is set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from orchestrator.adapters import databricks_jobs as jobs
from orchestrator.build.changes import select_tasks
from orchestrator.build.deploy import DeployItem, delete_folder, deploy, plan_deploy
from orchestrator.build.entry_notebook import ENTRY_SOURCE, entry_path
from orchestrator.build.progress import Progress
from orchestrator.clock import Clock, SystemClock
from orchestrator.config.context import BuildContext, detect_context
from orchestrator.config.loader import load_config, resolve_target
from orchestrator.errors import (
    EXIT_OK,
    EXIT_TESTS_FAILED,
    EXIT_TIMEOUT,
    InfrastructureError,
    TimeoutExpired,
)
from orchestrator.job.template import build_parameters, job_values, render_job
from orchestrator.services import LOCAL_CLUSTER_ID, Connection, open_services
from orchestrator.signals import BuildCancelled, cancel_on_signals, shielded
from orchestrator.storage.base import Storage, data_prefix, tree_digest

if TYPE_CHECKING:
    from databricks.sdk.service.jobs import Run

    from orchestrator.config.schema import BuildConfig

__all__ = ["BuildOptions", "BuildPlan", "BuildResult", "execute", "plan_document", "prepare"]

log = logging.getLogger(__name__)
MARKER_NAME = "_build.json"


@dataclass(frozen=True)
class BuildOptions:
    config_path: Path | None = None
    target: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    build_id: str | None = None
    repo_name: str | None = None
    changed_since: str | None = None


@dataclass(frozen=True)
class BuildPlan:
    config: BuildConfig
    context: BuildContext
    settings: dict[str, Any]
    parameters: dict[str, str]
    entry_notebook: str
    build_folder: str
    storage_prefix: str
    deploy_folders: tuple[str, ...]
    deploy_items: tuple[DeployItem, ...]
    uploads: tuple[tuple[Path, str], ...]  # local folder -> storage sub-prefix
    data: tuple[Path, str] | None  # test data -> its shared, content-addressed prefix
    tasks: tuple[str, ...]  # the task keys this build runs
    idempotency_token: str
    warnings: tuple[str, ...] = ()  # one line each, shown before the build goes on

    @property
    def marker(self) -> dict[str, str | None]:
        c = self.context
        return {
            "build_id": c.build_id,
            "build_number": c.build_number,
            "repo": c.repo_name,
            "branch": c.branch,
            "commit": c.commit,
            "pull_request": c.pull_request,
            "provider": c.provider,
            "url": c.url,
            "target": self.config.target,
            "data": self.data[1] if self.data else None,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }


@dataclass(frozen=True)
class BuildResult:
    exit_code: int
    run_id: int | None = None
    run_url: str | None = None
    summary: Any = None  # ResultsSummary once collected
    document: dict[str, Any] = field(default_factory=dict)


def prepare(options: BuildOptions, *, environ: Mapping[str, str], cwd: Path) -> BuildPlan:
    """Everything decided without a remote call; UsageError on any bad input."""
    config_path = options.config_path
    if config_path is None and environ.get("ORCHESTRATOR_CONFIG"):
        config_path = Path(environ["ORCHESTRATOR_CONFIG"])
    if config_path is None and (cwd / "orchestrator.yml").is_file():
        config_path = cwd / "orchestrator.yml"
    # the repo root: where the config file is, else the working directory
    root = config_path.resolve().parent if config_path is not None else cwd
    config = load_config(
        config_path,
        target=resolve_target(options.target, environ),
        overrides=options.overrides,
        environ=environ,
        root=root,
    )
    context = detect_context(
        environ=environ, cwd=config.root, build_id=options.build_id, repo_name=options.repo_name
    )
    repo = context.repo_name
    cluster_id = config.cluster_id or (LOCAL_CLUSTER_ID if config.workspace.is_local else "")
    entry = entry_path(config.build_root, repo)
    warnings: list[str] = []
    settings = render_job(
        config.paths.job_template,
        values=job_values(
            config=config, repo_name=repo, cluster_id=cluster_id, entry_notebook=entry
        ),
        warnings=warnings,
    )
    parameters = build_parameters(config=config, context=context)
    build_folder = parameters["build_folder"]
    folders, items = plan_deploy(
        config.paths.notebooks, build_folder, exclude=config.paths.storage_only
    )
    uploads: list[tuple[Path, str]] = [(p, f"tests/{p.name}") for p in config.paths.test_scripts]
    uploads.append((config.paths.models, "models"))
    data = None
    if config.paths.test_data.is_dir():
        # stored once by content hash, shared read-only by every build with the same data
        data = (config.paths.test_data, data_prefix(tree_digest(config.paths.test_data)))
        parameters["data_dir"] = f"{config.storage.cluster_root.rstrip('/')}/{data[1]}"
    tasks = tuple(t["task_key"] for t in settings["tasks"])
    if options.changed_since:
        tasks = select_tasks(
            settings,
            config=config,
            since=options.changed_since,
        )
    attempt = environ.get("SYSTEM_JOBATTEMPT", "")
    token = hashlib.sha256(f"{repo}\n{context.build_id}\n{attempt}".encode()).hexdigest()[:48]
    return BuildPlan(
        config=config,
        context=context,
        settings=settings,
        parameters=parameters,
        entry_notebook=entry,
        build_folder=build_folder,
        storage_prefix=f"{repo}/{context.build_id}",
        deploy_folders=tuple(folders),
        deploy_items=tuple(items),
        uploads=tuple(uploads),
        data=data,
        tasks=tasks,
        idempotency_token=token,
        warnings=tuple(warnings),
    )


def plan_document(plan: BuildPlan) -> dict[str, Any]:
    """What ``orchestrator plan`` prints: the job, the files and where they go, the run."""
    root = plan.config.root
    storage_root = plan.config.storage.root.rstrip("/")
    return {
        "target": plan.config.target,
        "workspace": plan.config.workspace.host or "local (embedded)",
        "build": plan.marker | {"created": None},
        "job": plan.settings,
        "entry_notebook": plan.entry_notebook,
        "deploy": [
            {
                "source": _rel(i.source, root),
                "target": i.target,
                "type": i.kind,
                "language": i.language,
            }
            for i in plan.deploy_items
        ],
        "storage": [
            {"source": _rel(src, root), "target": f"{storage_root}/{plan.storage_prefix}/{dst}"}
            for src, dst in plan.uploads
        ]
        + [
            {"source": _rel(src, root), "target": f"{storage_root}/{dst}", "shared": True}
            for src, dst in ([plan.data] if plan.data else [])
        ],
        "run": {
            "job_parameters": plan.parameters,
            "tasks": list(plan.tasks),
            "idempotency_token": plan.idempotency_token,
        },
    }


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _upload(plan: BuildPlan, storage: Storage, progress: Progress) -> None:
    test_data = _rel(plan.config.paths.test_data, plan.config.root)
    if plan.data is None:
        progress.info(f"{test_data}: missing, nothing to upload")
    else:
        sent = storage.upload_immutable(*plan.data)
        progress.info(f"{test_data} -> {plan.data[1]}/ ({sent} new files, shared)")
    for source, dest in plan.uploads:
        if not source.exists():
            progress.info(f"{_rel(source, plan.config.root)}: missing, nothing to upload")
            continue
        count = storage.upload_tree(source, f"{plan.storage_prefix}/{dest}")
        progress.info(f"{_rel(source, plan.config.root)} -> {dest}/ ({count} files)")


def _write_markers(plan: BuildPlan, conn: Connection, storage: Storage, scratch: Path) -> None:
    import base64

    from databricks.sdk.service.workspace import ImportFormat

    data = json.dumps(plan.marker, indent=2).encode()
    marker_dir = scratch / "marker"
    marker_dir.mkdir(parents=True, exist_ok=True)
    (marker_dir / MARKER_NAME).write_bytes(data)
    storage.upload_tree(marker_dir, plan.storage_prefix)
    try:
        conn.client.workspace.import_(
            posixpath.join(plan.build_folder, MARKER_NAME),
            content=base64.b64encode(data).decode(),
            format=ImportFormat.AUTO,
            overwrite=True,
        )
    except Exception as exc:
        raise InfrastructureError(f"writing the build marker: {exc}") from exc


def _ensure_entry(plan: BuildPlan, conn: Connection) -> None:
    import base64

    from databricks.sdk.errors import NotFound
    from databricks.sdk.service.workspace import ImportFormat, Language

    client = conn.client
    try:
        current = client.workspace.download(plan.entry_notebook).read().decode()
    except NotFound:
        current = None
    except Exception as exc:
        raise InfrastructureError(f"reading {plan.entry_notebook}: {exc}") from exc
    if current is not None and current.strip() == ENTRY_SOURCE.strip():
        return
    try:
        client.workspace.mkdirs(posixpath.dirname(plan.entry_notebook))
        client.workspace.import_(
            plan.entry_notebook,
            content=base64.b64encode(ENTRY_SOURCE.encode()).decode(),
            format=ImportFormat.SOURCE,
            language=Language.PYTHON,
            overwrite=True,
        )
    except Exception as exc:
        raise InfrastructureError(f"writing {plan.entry_notebook}: {exc}") from exc


def execute(
    plan: BuildPlan,
    *,
    out: TextIO,
    environ: Mapping[str, str],
    clock: Clock | None = None,
    keep: bool = False,
    live: bool = False,
    scratch: Path,
) -> BuildResult:
    """Run the build; the returned exit code follows the README (0, 1, 3, 4, 130, 143)."""
    from orchestrator.build.collect import collect_run

    clock = clock or SystemClock()
    config = plan.config
    progress = Progress(out, live=live)
    job_id: int | None = None
    run_id: int | None = None
    run: Run | None = None
    run_url: str | None = None
    deployed = uploaded = False
    with cancel_on_signals(), open_services(config, environ=environ) as (conn, storage):
        try:
            progress.step(
                f"build {plan.context.build_id} of {plan.context.repo_name} on {conn.host}"
            )
            job_id = prepare_job(plan, conn, progress=progress, clock=clock)
            deployed = uploaded = True  # from here on, a failure cleans up what was sent
            deploy_build(plan, conn, storage, progress=progress, scratch=scratch)
            run_id, run_url = start_build_run(plan, conn, job_id, progress=progress)
            job_id = None  # the run is known by its id from here on
            run, exit_code = await_run(plan, conn, run_id, progress=progress, clock=clock)
            progress.step("collect results")
            summary = collect_run(
                conn.client, run, storage=storage, plan=plan, scratch=scratch, progress=progress
            )
            if exit_code == EXIT_OK and (not summary.ok or summary.tests == 0):
                exit_code = EXIT_TESTS_FAILED
            return BuildResult(exit_code, run_id, run_url, summary)
        except BuildCancelled as cancelled:
            progress.step(f"cancelled by {cancelled}")
            return BuildResult(cancelled.exit_code, run_id, run_url)
        finally:
            with shielded():
                if run_id is None and job_id is not None:
                    # interrupted around run-now: a run of this build may exist without its id
                    run_id = jobs.find_build_run(conn.client, job_id, plan.context.build_id)
                if run_id is not None and (run is None or not jobs.is_terminal(run)):
                    # any way out before the run ended (a signal, an error) cancels it first
                    progress.step(f"cancelling run {run_id}")
                    jobs.cancel_run(conn.client, run_id, clock=clock)
                if keep:
                    progress.step(f"kept {plan.build_folder} and the storage prefix (--keep)")
                else:
                    clean_build(plan, conn, storage, progress, deployed=deployed, uploaded=uploaded)


def prepare_job(plan: BuildPlan, conn: Connection, *, progress: Progress, clock: Clock) -> int:
    """The cluster running (under its own timeout), the entry notebook and the job in place."""
    progress.step(f"cluster {conn.cluster_id}")
    started = jobs.ensure_cluster_running(
        conn.client,
        conn.cluster_id,
        timeout=plan.config.timeouts.cluster_start,
        clock=clock,
        on_wait=lambda state: progress.info(f"cluster is {state}"),
    )
    progress.info("started" if started else "running")
    _ensure_entry(plan, conn)
    job_id, action = jobs.ensure_job(conn.client, plan.settings)
    progress.step(f"job {plan.settings['name']} ({job_id}): {action}")
    return job_id


def deploy_build(
    plan: BuildPlan, conn: Connection, storage: Storage, *, progress: Progress, scratch: Path
) -> None:
    """Notebooks to the build folder, test data, scripts and models to storage, the markers."""
    config = plan.config
    progress.step(f"deploy {len(plan.deploy_items)} files to {plan.build_folder}")
    deploy(
        conn.client,
        config.paths.notebooks,
        plan.build_folder,
        concurrency=config.concurrency.deploy,
        exclude=config.paths.storage_only,
        progress=lambda done, total: progress.count("deployed", done, total),
    )
    progress.step(f"upload to {storage.describe(plan.storage_prefix)}")
    _upload(plan, storage, progress)
    _write_markers(plan, conn, storage, scratch)


def start_build_run(
    plan: BuildPlan, conn: Connection, job_id: int, *, progress: Progress
) -> tuple[int, str | None]:
    """run-now with the build's parameters; the run URL is printed as soon as the run exists."""
    progress.step(f"run {', '.join(plan.tasks)}")
    run_id = jobs.start_run(
        conn.client,
        job_id,
        job_parameters=plan.parameters,
        idempotency_token=plan.idempotency_token,
        only=plan.tasks if len(plan.tasks) < len(plan.settings["tasks"]) else None,
    )
    run_url = jobs.get_run(conn.client, run_id).run_page_url
    progress.info(f"run {run_id}: {run_url}")
    return run_id, run_url


def await_run(
    plan: BuildPlan, conn: Connection, run_id: int, *, progress: Progress, clock: Clock
) -> tuple[Run, int]:
    """Wait under the build timeout; on expiry the run is cancelled (and waited for): exit 4."""
    config = plan.config
    try:
        run = jobs.wait_for_run(
            conn.client,
            run_id,
            deadline=clock.monotonic() + config.timeouts.build,
            clock=clock,
            polling=jobs.Polling(cap=config.timeouts.poll),
            on_update=progress.run,
        )
        return run, EXIT_OK
    except TimeoutExpired:
        progress.step(f"build timeout ({config.timeouts.build:.0f} s): cancelling run {run_id}")
        with shielded():
            ended = jobs.cancel_run(conn.client, run_id, clock=clock)
        return ended or jobs.get_run(conn.client, run_id), EXIT_TIMEOUT


def clean_build(
    plan: BuildPlan,
    conn: Connection,
    storage: Storage,
    progress: Progress,
    *,
    deployed: bool,
    uploaded: bool,
) -> None:
    try:
        if deployed:
            delete_folder(conn.client, plan.build_folder)
        if uploaded:
            storage.delete_prefix(plan.storage_prefix)
        if deployed or uploaded:
            progress.step("cleaned the build folder and storage prefix")
    except Exception as exc:  # noqa: BLE001 - cleaning must not hide the build's own result
        progress.info(f"cleanup failed ({exc}); `orchestrator cleanup` will remove it later")
