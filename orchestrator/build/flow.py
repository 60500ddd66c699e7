"""``orchestrator build``: from a plan (:mod:`orchestrator.build.plan`) to published test
results, with no run left behind.

:func:`execute` runs the steps: cluster, job, deploy, upload, run, wait, collect, clean. Each
step is a function of its own, which the step commands (:mod:`orchestrator.build.steps`) reuse.
Whatever happens after the run has started (a failure, the build timeout, SIGINT/SIGTERM), the
run is cancelled and waited for before the process exits, and the build's folders are removed
unless ``keep`` is set. Every remote call goes through the Databricks adapter
(``conn.workspace``) and the storage.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from orchestrator.adapters.databricks import Polling, RunView, platform_failure
from orchestrator.build.collect import collect_run, failures_for_the_ui
from orchestrator.build.deploy_plan import kernel_languages, uses_spark
from orchestrator.build.git_modes import GitRepo
from orchestrator.build.local_outputs import start_outputs
from orchestrator.build.model_registration import passed, register_models
from orchestrator.build.plan import BuildPlan, BuildResult, display_path
from orchestrator.build.progress import Progress
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import (
    EXIT_CANCELLED_SIGINT,
    EXIT_CANCELLED_SIGTERM,
    EXIT_INFRA,
    EXIT_OK,
    EXIT_TESTS_FAILED,
    EXIT_TIMEOUT,
    InfrastructureError,
    OrchestratorError,
    TimeoutExpired,
    UsageError,
)
from orchestrator.layout import HOME, MARKER_NAME
from orchestrator.services import LOOPBACK_HOSTS, Connection, open_services
from orchestrator.signals import BuildCancelled, at_stake, cancel_on_signals, shielded
from orchestrator.storage.base import Storage

__all__ = [
    "PLATFORM_FAILED",
    "await_run",
    "clean_build",
    "deploy_build",
    "execute",
    "prepare_cluster",
    "register_step",
    "secure_build_root",
    "start_build_run",
]

log = logging.getLogger(__name__)

#: the line a build prints when the platform, not the notebooks, ended its run
PLATFORM_FAILED = "the platform failed, not the notebooks (exit {exit}; a retry may pass): {reason}"


def _upload(plan: BuildPlan, storage: Storage, progress: Progress) -> None:
    configured = plan.config.paths.test_data
    test_data = "test data" if configured is None else display_path(configured, plan.config.root)
    if plan.data is None:
        if configured is not None:
            progress.info(f"{test_data}: missing, nothing to upload")
    else:
        sent = storage.upload_immutable(*plan.data)
        progress.info(f"{test_data} -> {plan.data[1]}/ ({sent} new files, shared)")
    for source, dest in plan.uploads:
        if not source.exists():
            progress.info(f"{display_path(source, plan.config.root)}: missing, nothing to upload")
            continue
        count = storage.upload_tree(source, f"{plan.storage_prefix}/{dest}")
        progress.info(f"{display_path(source, plan.config.root)} -> {dest}/ ({count} files)")


def _write_markers(plan: BuildPlan, conn: Connection, storage: Storage, scratch: Path) -> None:
    data = json.dumps(plan.marker, indent=2).encode()
    marker_dir = scratch / "marker"
    marker_dir.mkdir(parents=True, exist_ok=True)
    (marker_dir / MARKER_NAME).write_bytes(data)
    storage.upload_tree(marker_dir, plan.storage_prefix)
    if plan.config.deploy.mode == "workspace":  # a Git folder's files are the repository's
        conn.workspace.write_file(posixpath.join(plan.build_folder, MARKER_NAME), data)


@dataclass
class _Build:
    """What a build has done so far: what the wind-down must cancel and remove."""

    starting: bool = False  # run-now went out: a run may exist before its id is known
    run_id: int | None = None
    run: RunView | None = None
    run_url: str | None = None
    sent: bool = False  # deploy or upload begun: the build folder and prefix may exist
    kept_state: Path | None = None

    def at_stake(self, plan: BuildPlan) -> list[str]:
        """What a hard exit may leave behind."""
        items = [f"run {self.run_id} (may still be running)"] if self.run_id is not None else []
        if self.sent:
            items += [
                f"workspace folder {plan.build_folder}",
                f"storage prefix {plan.storage_prefix}",
            ]
        return items


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
    """Run the build; the returned exit code follows the README (0, 1, 3, 4, 130, 143).

    A signal during the final cancel or clean takes effect once they are done (130/143)."""
    clock = clock or SystemClock()
    config = plan.config
    progress = Progress(out, live=live)
    build = _Build()
    languages = kernel_languages(plan.deploy_items)
    spark = uses_spark(plan.deploy_items, plan.job["tasks"])
    # said before anything is opened: a host that does not answer is told of within a second
    where = config.workspace.host or "the local workspace (embedded)"
    progress.step(f"build {plan.context.build_id} of {plan.context.repo_name} on {where}")
    with (
        cancel_on_signals(grace=config.timeouts.cancel_grace),
        at_stake(lambda: build.at_stake(plan)),
        open_services(config, environ=environ, clock=clock, languages=languages, spark=spark) as (
            conn,
            storage,
        ),
    ):
        conn.workspace.retries.listen(progress.info)
        build.kept_state = conn.kept_state
        try:
            plan = at_home(plan, conn)
            result = _steps(plan, conn, storage, build, progress=progress, scratch=scratch)
        except BuildCancelled as cancelled:
            progress.step(f"cancelled by {cancelled}")
            conn.workspace.retries.hurry()  # the signal takes effect within seconds
            result = BuildResult(
                cancelled.exit_code, build.run_id, build.run_url, local_state=build.kept_state
            )
        except OrchestratorError as err:
            err.about_run(build.run_id, build.run_url)
            _wind_down(plan, conn, storage, build, progress, keep=keep)
            raise
        except BaseException:
            _wind_down(plan, conn, storage, build, progress, keep=keep)
            raise
        try:
            _wind_down(plan, conn, storage, build, progress, keep=keep)
        except BuildCancelled as late:
            progress.step(f"cancelled by {late}, after finishing the cleanup under way")
            if result.exit_code not in (EXIT_CANCELLED_SIGINT, EXIT_CANCELLED_SIGTERM):
                result = replace(result, exit_code=late.exit_code)
        return result


def _steps(
    plan: BuildPlan,
    conn: Connection,
    storage: Storage,
    build: _Build,
    *,
    progress: Progress,
    scratch: Path,
) -> BuildResult:
    start_outputs(plan, progress)
    check_git_access(plan, conn, progress=progress)  # before anything is made
    seed_dbfs(plan, conn, progress=progress)
    prepare_cluster(plan, conn, progress=progress)
    secure_build_root(plan, conn, progress=progress)
    build.sent = True  # from here on, a failure cleans up what was sent
    deploy_build(plan, conn, storage, progress=progress, scratch=scratch)
    build.starting = True
    build.run_id, build.run_url = start_build_run(plan, conn, progress=progress)
    build.run, exit_code = await_run(plan, conn, build.run_id, progress=progress)
    check_used_commit(plan, build.run)
    progress.step("collect results")
    collected = collect_run(
        conn.workspace, build.run, storage=storage, plan=plan, scratch=scratch, progress=progress
    )
    summary = collected.summary
    if conn.admin is not None:  # a workspace on this machine: its Jobs UI shows the counts
        failed = failures_for_the_ui(collected, build.run)
        conn.admin.record_test_counts(build.run_id, summary.counts(), failed)
    if exit_code == EXIT_OK and (not summary.ok or summary.tests == 0):
        exit_code = EXIT_TESTS_FAILED
    platform = collected.platform or platform_failure(build.run)
    if platform is not None and exit_code in (EXIT_OK, EXIT_TESTS_FAILED):
        progress.step(PLATFORM_FAILED.format(exit=EXIT_INFRA, reason=platform))
        exit_code = EXIT_INFRA
    exit_code, registered = register_step(plan, conn, build.run, summary, exit_code, progress)
    return BuildResult(
        exit_code,
        build.run_id,
        build.run_url,
        summary,
        local_state=build.kept_state,
        registered=tuple(registered),
    )


def register_step(
    plan: BuildPlan,
    conn: Connection,
    run: RunView,
    summary: Any,
    exit_code: int,
    progress: Progress,
) -> tuple[int, list[Any]]:
    """``models.register``, when configured: a passed build of a registering branch registers
    its model; any other build says in one line why it does not. A registry failure is exit 3
    (the platform's), and the results collected stand: the caller publishes them."""
    intent = plan.register
    if intent is None:
        return exit_code, []
    progress.step("register the model")
    refusal = intent.reason if not intent.allowed else passed(exit_code, summary)
    if refusal is not None:
        progress.info(refusal)
        return exit_code, []
    try:
        registered = register_models(
            intent,
            conn.workspace,
            config=plan.config,
            context=plan.context,
            run=run,
            summary=summary,
            say=progress.info,
        )
    except InfrastructureError as exc:
        progress.info(f"registering failed (exit {EXIT_INFRA}; the test results stand): {exc}")
        return EXIT_INFRA, []
    return exit_code, registered


def _wind_down(
    plan: BuildPlan,
    conn: Connection,
    storage: Storage,
    build: _Build,
    progress: Progress,
    *,
    keep: bool,
) -> None:
    """Cancel a run that has not ended and remove the build's folders, shielded from signals
    (one that arrives is raised as BuildCancelled when this is done)."""
    with shielded():
        run_id = build.run_id
        if run_id is None and build.starting:
            # interrupted around run-now: a run of this build may exist without its id
            try:
                run_id = build.run_id = conn.workspace.find_build_run(
                    plan.context.repo_name, plan.context.build_id
                )
            except InfrastructureError as exc:
                progress.info(f"cannot look for the build's run ({exc})")
        cancelled = True
        if run_id is not None and (build.run is None or not build.run.over):
            # any way out before the run ended (a signal, an error) cancels it first
            progress.step(f"cancelling run {run_id}")
            ended = conn.workspace.cancel_run(run_id)
            cancelled = ended is not None
            build.run = ended or build.run
        if keep:
            progress.step(f"kept {plan.build_folder} and the storage prefix (--keep)")
        elif build.sent:
            progress.step(f"clean {plan.build_folder} and the storage prefix")
            cleaned = clean_build(plan, conn, storage, progress, deployed=True, uploaded=True)
            build.sent = not cleaned
        left = ([f"run {run_id} (may still be running)"] if run_id and not cancelled else []) + (
            [f"workspace folder {plan.build_folder}"] if build.sent and not keep else []
        )
        if left:
            progress.step(
                f"left for `orchestrator cleanup` ({conn.host} "
                f"{'is not answering' if conn.workspace.retries.gone else 'refused'}): "
                + ", ".join(left)
            )


def at_home(plan: BuildPlan, conn: Connection) -> BuildPlan:
    """The plan with a ``~`` build root resolved to the home of the identity the build runs
    as (SCIM ``Me``); the plan itself when its root is absolute."""
    root = plan.config.build_root
    if not (root == HOME or root.startswith(HOME + "/")):
        return plan
    return plan.at_home(conn.workspace.current_user())


def prepare_cluster(plan: BuildPlan, conn: Connection, *, progress: Progress) -> None:
    """The cluster running, under its own timeout."""
    progress.step(f"cluster {conn.cluster_id}")
    started = conn.workspace.ensure_cluster_running(
        conn.cluster_id,
        timeout=plan.config.timeouts.cluster_start,
        on_wait=lambda state: progress.info(f"cluster is {state}"),
    )
    progress.info("started" if started else "running")


def secure_build_root(plan: BuildPlan, conn: Connection, *, progress: Progress) -> None:
    """A build root only the build's identity (and the admins) can write: made so when the
    build creates it, checked on every build. Others who can still write it (a grant inherited
    from a parent, which the Permissions API cannot take away) are named in a warning."""
    root = plan.config.build_root
    user = conn.workspace.current_user()
    if conn.workspace.list(root) is None:  # not there yet: this build makes it
        conn.workspace.mkdirs(root)
        conn.workspace.restrict(root, user)
        progress.info(f"{root}: created; only {user} (and the workspace admins) can write it")
    others = sorted(
        {
            f"{g.principal} ({g.level}"
            + (f", inherited from {g.inherited_from})" if g.inherited_from else ")")
            for g in conn.workspace.writers(root)
            if g.principal != user and not (g.kind == "group" and g.principal == "admins")
        }
    )
    if others:
        progress.info(
            f"warning: {root} can be changed by {', '.join(others)}: what they change runs as "
            f"{user}; use a build root under {user}'s home (~/...)"
        )


def deploy_build(
    plan: BuildPlan, conn: Connection, storage: Storage, *, progress: Progress, scratch: Path
) -> None:
    """Notebooks to the build folder (workspace files, or a Git folder at the build's commit;
    nothing in ``git`` mode), test data, scripts and models to storage, the markers."""
    config = plan.config
    git = plan.git
    if git is None:
        progress.step(f"deploy {len(plan.deploy_items)} files to {plan.build_folder}")
        conn.workspace.deploy(
            plan.deploy_folders,
            plan.deploy_items,
            concurrency=config.concurrency.deploy,
            progress=lambda done, total: progress.count("deployed", done, total),
        )
    elif config.deploy.mode == "git-folder":
        _git_folder(plan, git, conn, progress)
    else:
        progress.step(f"run from {git.url} at {git.commit} (deploy.mode git: nothing uploaded)")
    progress.step(f"upload to {storage.describe(plan.storage_prefix)}")
    _upload(plan, storage, progress)
    _write_markers(plan, conn, storage, scratch)


def seed_dbfs(plan: BuildPlan, conn: Connection, *, progress: Progress) -> None:
    """``local.dbfs``: the repo's folders into the local workspace's DBFS (what a team's
    infrastructure puts there on a real workspace). A workspace elsewhere is never written."""
    seeds = plan.config.local.dbfs
    if not seeds or conn.admin is None:
        if seeds:
            progress.info(f"local.dbfs: not applied to {conn.host} (the local workspace's only)")
        return
    for target, folder in seeds.items():
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(folder).as_posix()
            conn.workspace.put_dbfs(f"{target.rstrip('/')}/{relative}", path.read_bytes())
        shown = display_path(folder, plan.config.root)
        progress.info(f"local.dbfs: {shown} -> dbfs:{target} ({len(files)} files)")


def check_git_access(plan: BuildPlan, conn: Connection, *, progress: Progress) -> None:
    """A Git-mode build needs the workspace to reach the repository with the build identity's
    Git credentials: none for the provider is exit 2, before anything is made. A workspace on
    this machine reaches no provider: it is told where the checkout is instead, and the
    embedded one (the build's own) gets a credential entry when it has none."""
    git = plan.git
    if git is None:
        return
    providers = conn.workspace.git_credential_providers()
    if git.provider.lower() not in providers:
        if conn.local and conn.admin is not None:
            conn.workspace.add_git_credential(git.provider, "orchestrator")
            progress.info(f"Git credentials for {git.provider}: added to the local workspace")
        else:
            raise UsageError(
                f"deploy.mode {plan.config.deploy.mode}: the workspace has no Git credentials "
                f"for {git.provider} for the identity the build runs as; add them (User "
                "settings > Linked accounts, or the Git Credentials API) so that it can read "
                f"{git.url}"
            )
    if conn.admin is not None:
        conn.admin.register_git_source(git.url, str(git.checkout))


def _git_folder(plan: BuildPlan, git: GitRepo, conn: Connection, progress: Progress) -> None:
    """The build folder as a Git folder at the build's commit (its branch, verified)."""
    if not git.branch:
        raise UsageError(
            "deploy.mode git-folder: the build's branch is not known (a Git folder checks out "
            "branches and tags, not commits); use deploy.mode git"
        )
    progress.step(f"Git folder {plan.build_folder}: {git.url} at {git.branch}")
    conn.workspace.mkdirs(posixpath.dirname(plan.build_folder))
    sparse = [git.notebooks] if git.notebooks else []
    repo_id = conn.workspace.create_git_folder(
        url=git.url, provider=git.provider, path=plan.build_folder, sparse=sparse
    )
    head = conn.workspace.check_out(repo_id, branch=git.branch)
    if head != git.commit:
        raise InfrastructureError(
            f"Git folder {plan.build_folder}: {git.branch} is at {head}, not the build's commit "
            f"{git.commit} (the branch moved since the build started); run the build again"
        )
    progress.info(f"at {head}")


def check_used_commit(plan: BuildPlan, run: RunView) -> None:
    """A ``git`` build's run used the build's commit (``git_snapshot.used_commit``)."""
    git = plan.git
    if plan.config.deploy.mode != "git" or git is None or run.used_commit is None:
        return
    if run.used_commit != git.commit:
        raise InfrastructureError(
            f"run {run.run_id} ran {git.url} at {run.used_commit}, not the build's commit "
            f"{git.commit}"
        )


def start_build_run(
    plan: BuildPlan, conn: Connection, *, progress: Progress
) -> tuple[int, str | None]:
    """The build's own job (made, or found again by its name on a retry), then its run
    (``run-now`` with the build's idempotency token); the run's URL is printed as soon as the
    run exists."""
    name = plan.job["name"]
    job_id, action = conn.workspace.create_build_job(plan.job)
    progress.step(f"run {len(plan.tasks)} tasks as job {job_id} ({name}, {action})")
    run_id = conn.workspace.run_build_job(job_id, idempotency_token=plan.idempotency_token)
    run_url = conn.workspace.get_run(run_id).run_page_url
    progress.info(f"run {run_id}: {run_url}")
    return run_id, run_url


#: the poll interval for a workspace on this machine (embedded or ``local serve``): a poll is
#: a loopback request of a few milliseconds, and a run's end is seen within a tenth of a second
_LOOPBACK_POLL = 0.1


def _polling(conn: Connection, cap: float) -> Polling:
    """How a run is polled: adaptive up to ``timeouts.poll``; fast on a loopback workspace."""
    if conn.local or urlsplit(conn.host).hostname in LOOPBACK_HOSTS:
        fast = min(cap, _LOOPBACK_POLL)
        return Polling(initial=fast, factor=1.0, cap=fast)
    return Polling(cap=cap)


def await_run(
    plan: BuildPlan, conn: Connection, run_id: int, *, progress: Progress
) -> tuple[RunView, int]:
    """Wait under the build timeout; on expiry the run is cancelled (and waited for): exit 4."""
    config = plan.config
    try:
        run = conn.workspace.wait_for_run(
            run_id,
            deadline=conn.workspace.clock.monotonic() + config.timeouts.build,
            polling=_polling(conn, config.timeouts.poll),
            on_update=progress.run,
        )
        return run, EXIT_OK
    except TimeoutExpired:
        progress.step(f"build timeout ({config.timeouts.build:.0f} s): cancelling run {run_id}")
        with shielded():
            ended = conn.workspace.cancel_run(run_id)
        return ended or conn.workspace.get_run(run_id), EXIT_TIMEOUT


def clean_build(
    plan: BuildPlan,
    conn: Connection,
    storage: Storage,
    progress: Progress,
    *,
    deployed: bool,
    uploaded: bool,
) -> bool:
    """Remove the build folder and storage prefix, each tried on its own; False (and a line
    saying so) when one of them failed. The build's job stays: the Jobs UI shows the build."""
    failed: list[str] = []
    if deployed:
        try:
            conn.workspace.delete(plan.build_folder)
        except Exception as exc:  # noqa: BLE001 - cleaning must not hide the build's own result
            failed.append(f"the build folder: {exc}")
    if uploaded:
        try:
            storage.delete_prefix(plan.storage_prefix)
        except Exception as exc:  # noqa: BLE001 - as above
            failed.append(f"the storage prefix: {exc}")
    if failed:
        for problem in failed:
            progress.info(f"cleanup failed for {problem}; `orchestrator cleanup` removes it later")
        return False
    if deployed or uploaded:
        progress.step("cleaned the build folder and storage prefix")
    return True
