"""``orchestrator cleanup``: old build folders, their storage prefixes and orphaned runs.

1. :func:`~orchestrator.cleanup.discovery.discover` finds the builds and their markers.
2. :func:`plan_cleanup` picks the orphaned runs and applies the retention policy
   (:mod:`orchestrator.cleanup.policy`); a build with a live run is kept.
3. :func:`execute_cleanup` cancels the orphans, records the builds it is about to delete in
   each repo's journal, deletes workspace folders and storage prefixes in parallel with
   workspace deletes under a token-bucket rate limit, and clears the journal. "Not found" counts
   as done, so a re-run after a crash finishes the job, even for a folder whose marker was
   already deleted. Then the shared test-data copies the policy selected
   (:func:`~orchestrator.cleanup.policy.select_data`), journaled the same way in
   ``<build_root>/_orchestrator/cleanup.json``; each copy's modification time is read again just
   before its delete, and a copy used since the plan was made is kept.

:func:`cleanup`, the library's one entry point, runs the three on interfaces (a
:class:`~orchestrator.ports.WorkspaceTree`, a :class:`~orchestrator.storage.base.Storage`, a
:class:`~orchestrator.ports.RunControl`), so tests pass fakes (and call the two steps on their
own); :func:`orchestrator.cleanup.command.run_cleanup_command` wires the configured target's
services in. Nothing outside
``<build_root>/<repo>/<build_id>``, ``<storage_root>/<repo>/<build_id>`` and
``<storage_root>/_data/<sha256>`` is ever deleted, ``_orchestrator`` never, and job definitions
are never changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial

from orchestrator.adapters.databricks.values import ActiveRun
from orchestrator.cleanup.discovery import (
    Discovery,
    discover,
    read_data_journal,
    read_journal,
    storage_modified,
    write_data_journal,
    write_journal,
)
from orchestrator.cleanup.model import (
    CleanupOptions,
    CleanupPlan,
    CleanupReport,
    DataDeleted,
    Deleted,
)
from orchestrator.cleanup.policy import (
    DataDecision,
    Decision,
    Policy,
    check_workspace_root,
    select_builds,
    select_data,
    select_orphans,
)
from orchestrator.cleanup.report import data_deleted_line, deleted_line, header
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import OrchestratorError
from orchestrator.layout import build_folder, build_prefix, data_prefix, is_build_name
from orchestrator.ports import ModelRegistry, RunControl, WorkspaceTree
from orchestrator.ratelimit import TokenBucket
from orchestrator.signals import BuildCancelled, cancel_on_signals, shielded
from orchestrator.storage.base import Storage

__all__ = ["Event", "cleanup", "execute_cleanup", "plan_cleanup"]

log = logging.getLogger(__name__)

Event = Callable[[str], None]


def plan_cleanup(
    discovery: Discovery,
    runs: Iterable[ActiveRun],
    *,
    root: str,
    storage_root: str,
    policy: Policy,
    now: datetime,
) -> CleanupPlan:
    """Orphans to cancel and one decision per build; a build with a live run is kept."""
    runs = list(runs)
    existing = {b.key for b in discovery.builds if b.in_workspace}
    orphans = select_orphans(runs, root=root, existing=existing, policy=policy, now=now)
    cancelled = {run.run_id for run, _ in orphans}
    protected = {
        (r.repo, r.build_id): f"run {r.run_id} is active"
        for r in runs
        if r.run_id not in cancelled and r.build_id
    }
    decisions = select_builds(discovery.builds, policy=policy, now=now, protected=protected)
    data = select_data(discovery.data, decisions, policy=policy, now=now)
    return CleanupPlan(
        root,
        storage_root,
        tuple(decisions),
        tuple(orphans),
        discovery.journals,
        discovery.notes,
        tuple(data),
        discovery.data_journal,
    )


# -- execution ---------------------------------------------------------------------------------


def _delete_in_workspace(
    decision: Decision,
    *,
    root: str,
    tree: WorkspaceTree,
    runs: RunControl,
    limiter: TokenBucket,
    stop: threading.Event,
    models: ModelRegistry | None = None,
    mlflow_experiment: str | None = None,
) -> Deleted:
    """A build's workspace part. With ``models`` (``models.cleanup_runs``), the MLflow runs
    the build's task runs logged first (they are found through the job's runs); then the
    build's job (cleanup finds it through the folder, so it goes before the folder), then the
    workspace folder; each request throttled; idempotent."""
    b = decision.build
    if stop.is_set():
        return Deleted(b.repo, b.build_id, error="interrupted before it started")
    job = folder = False
    mlflow_runs = 0
    try:
        if b.has_job and models is not None:
            limiter.acquire()
            task_runs = models.build_task_runs(b.repo, b.build_id)
            if task_runs:
                mlflow_runs = models.delete_mlflow_runs(task_runs, experiment=mlflow_experiment)
        if b.has_job:
            limiter.acquire()
            job = runs.delete_build_jobs(b.repo, b.build_id) > 0
        if b.in_workspace:
            path = build_folder(root, b.repo, b.build_id)
            limiter.acquire()
            folder = tree.delete(path)
    except (OrchestratorError, OSError) as exc:
        error = str(exc) or type(exc).__name__
        return Deleted(b.repo, b.build_id, folder, error=error, job=job, mlflow_runs=mlflow_runs)
    return Deleted(b.repo, b.build_id, folder, job=job, mlflow_runs=mlflow_runs)


def _delete_in_storage(decision: Decision, *, storage: Storage, stop: threading.Event) -> Deleted:
    """A build's storage prefix (not throttled: the workspace's limits are not storage's);
    idempotent."""
    b = decision.build
    if stop.is_set():
        return Deleted(b.repo, b.build_id, error="interrupted before it started")
    try:
        name = build_prefix(b.repo, b.build_id)
        size = storage.size(name)
        prefix = storage.delete_prefix(name)
    except (OrchestratorError, OSError) as exc:
        return Deleted(b.repo, b.build_id, error=str(exc) or type(exc).__name__)
    return Deleted(b.repo, b.build_id, prefix=prefix, bytes=size if prefix else 0)


def _merged(workspace: Deleted, stored: Deleted) -> Deleted:
    """One build's result from its two parts."""
    errors = [e for e in (workspace.error, stored.error) if e]
    return replace(
        workspace,
        prefix=stored.prefix,
        bytes=stored.bytes,
        error="; ".join(dict.fromkeys(errors)) or None,
    )


def _cancel_orphans(
    plan: CleanupPlan, runs: RunControl, *, timeout: float, emit: Event
) -> tuple[list[int], list[int], list[str]]:
    sent: list[int] = []
    errors: list[str] = []
    for run, reason in plan.orphans:
        try:
            if runs.cancel(run.run_id):
                sent.append(run.run_id)
                emit(f"cancelled run {run.run_id} of {run.job_name}: {reason}")
        except OrchestratorError as exc:
            errors.append(f"cancelling run {run.run_id}: {exc}")
    ended = runs.wait_ended(sent, timeout=timeout) if sent else set()
    unconfirmed = [r for r in sent if r not in ended]
    errors += [f"run {r} had not ended {timeout:.0f} s after its cancel" for r in unconfirmed]
    return sent, unconfirmed, errors


def _finish_journals(
    plan: CleanupPlan,
    tree: WorkspaceTree,
    deleted: Iterable[Deleted],
    started: Mapping[str, set[str]],
) -> None:
    """Drop finished builds, and those no longer found anywhere, from the journals; a failed
    one stays for the next run."""
    done: dict[str, set[str]] = {}
    for d in deleted:
        if d.done:
            done.setdefault(d.repo, set()).add(d.build_id)
    for repo in sorted(set(started) | {r for r, ids in plan.journals.items() if ids}):
        found = {d.build.build_id for d in plan.decisions if d.build.repo == repo}
        gone = plan.journals.get(repo, frozenset()) - found
        try:
            current = read_journal(tree, plan.root, repo)
        except OrchestratorError as exc:
            log.warning("could not read the cleanup journal of %s: %s", repo, exc)
            continue
        finished = done.get(repo, set()) | gone
        if current & finished:
            write_journal(tree, plan.root, repo, current - finished)


def _delete_one_copy(decision: DataDecision, *, storage: Storage) -> DataDeleted:
    """One ``_data`` copy, unless it was used since the plan was made; idempotent."""
    copy = decision.copy
    prefix = data_prefix(copy.digest)
    try:
        now = storage_modified(storage, prefix)
        if copy.modified is not None and now is not None and now > copy.modified:
            return DataDeleted(copy.digest, kept="used since this cleanup started")
        size = storage.size(prefix)
        deleted = storage.delete_prefix(prefix)
    except (OrchestratorError, OSError) as exc:
        return DataDeleted(copy.digest, error=str(exc) or type(exc).__name__)
    return DataDeleted(copy.digest, deleted, size if deleted else 0)


def _delete_data(
    plan: CleanupPlan,
    *,
    tree: WorkspaceTree,
    storage: Storage,
    results: dict[str, DataDeleted],
    emit: Event,
) -> None:
    """The selected test-data copies, after the builds: journaled first, one at a time."""
    todo = plan.data_of("delete")
    if not todo:
        return
    write_data_journal(tree, plan.root, plan.data_journal | {d.copy.digest for d in todo})
    for decision in todo:
        result = _delete_one_copy(decision, storage=storage)
        results[result.digest] = result
        emit(data_deleted_line(result))


def _finish_data_journal(
    plan: CleanupPlan, tree: WorkspaceTree, deleted: Iterable[DataDeleted]
) -> None:
    """Drop the finished copies, and those no longer in storage, from the data journal."""
    if not plan.data_of("delete") and not plan.data_journal:
        return
    gone = plan.data_journal - {d.copy.digest for d in plan.data}
    finished = {d.digest for d in deleted if d.done} | gone
    try:
        current = read_data_journal(tree, plan.root)
    except OrchestratorError as exc:
        log.warning("could not read the test-data cleanup journal: %s", exc)
        return
    if current & finished:
        write_data_journal(tree, plan.root, current - finished)


def execute_cleanup(
    plan: CleanupPlan,
    *,
    tree: WorkspaceTree,
    storage: Storage,
    runs: RunControl,
    options: CleanupOptions,
    clock: Clock | None = None,
    on_event: Event | None = None,
    models: ModelRegistry | None = None,
) -> CleanupReport:
    """Cancel the orphans, then delete the selected builds in parallel under the rate limit.

    SIGINT/SIGTERM stop it between deletes: the deletes under way finish, the journal keeps
    what is left for the next run, and the report says it was interrupted.
    """
    clock = clock or SystemClock()
    emit: Event = on_event or (lambda _line: None)
    started = clock.monotonic()
    # starts empty: a cleanup right after another one (or after builds' own deletes) adds no
    # burst on top of theirs, so it stays under the service's limit from its first delete
    limiter = TokenBucket(options.rate, initial=0.0, clock=clock)
    stop = threading.Event()
    results: dict[tuple[str, str], Deleted] = {}
    data: dict[str, DataDeleted] = {}
    interrupted: BuildCancelled | None = None
    cancelled: list[int] = []
    unconfirmed: list[int] = []
    errors: list[str] = []
    todo = plan.of("delete")
    by_repo: dict[str, set[str]] = {}
    for d in todo:
        by_repo.setdefault(d.build.repo, set()).add(d.build.build_id)
    kinds: dict[Future[Deleted], str] = {}  # "workspace" or "storage"
    parts: Parts = {}
    # a build's workspace part and its storage part run in pools of their own, so storage
    # requests never hold a workspace slot (both are idempotent; the journal covers a crash
    # between them); a local folder's part is system calls, one at a time (Storage.parallel)
    pool = ThreadPoolExecutor(max(1, options.concurrency), thread_name_prefix="cleanup")
    in_storage = max(1, options.concurrency) if storage.parallel else 1
    store_pool = ThreadPoolExecutor(in_storage, thread_name_prefix="cleanup-st")
    with cancel_on_signals():
        try:
            cancelled, unconfirmed, errors = _cancel_orphans(
                plan, runs, timeout=options.cancel_timeout, emit=emit
            )
            for repo, ids in sorted(by_repo.items()):
                write_journal(tree, plan.root, repo, plan.journals.get(repo, frozenset()) | ids)
            in_workspace = partial(
                _delete_in_workspace,
                root=plan.root,
                tree=tree,
                runs=runs,
                limiter=limiter,
                models=models if options.mlflow_runs else None,
                mlflow_experiment=options.mlflow_experiment,
            )
            for d in todo:
                # a part with nothing to delete is done here, not queued behind the others: a
                # build only in the workspace is done when its folder is, interrupted or not
                build = d.build
                if build.in_workspace or build.has_job:
                    kinds[pool.submit(in_workspace, d, stop=stop)] = "workspace"
                else:
                    _add_part(parts, "workspace", Deleted(build.repo, build.build_id))
                if build.in_storage:
                    stored = store_pool.submit(_delete_in_storage, d, storage=storage, stop=stop)
                    kinds[stored] = "storage"
                elif (nothing := _add_part(parts, "storage", Deleted(*build.key))) is not None:
                    results[build.key] = nothing  # in neither place (no plan makes one)
            for future in as_completed(kinds):
                result = _add_part(parts, kinds[future], future.result())
                if result is not None:
                    results[(result.repo, result.build_id)] = result
                    emit(deleted_line(result))
            _delete_data(plan, tree=tree, storage=storage, results=data, emit=emit)
        except BuildCancelled as exc:
            interrupted = exc
            stop.set()
        finally:
            with shielded():
                pool.shutdown(wait=True, cancel_futures=True)
                store_pool.shutdown(wait=True, cancel_futures=True)
                _gather_finished(kinds, parts, results)
                _finish_journals(plan, tree, results.values(), by_repo)
                _finish_data_journal(plan, tree, data.values())
    return _report(
        plan,
        results.values(),
        data.values(),
        runs=(cancelled, unconfirmed),
        errors=errors,
        seconds=clock.monotonic() - started,
        interrupted=interrupted,
    )


def _report(
    plan: CleanupPlan,
    results: Iterable[Deleted],
    data: Iterable[DataDeleted],
    *,
    runs: tuple[list[int], list[int]],
    errors: list[str],
    seconds: float,
    interrupted: BuildCancelled | None,
) -> CleanupReport:
    """What a cleanup did; after an interruption, only the builds that are wholly gone."""
    deleted = sorted(results, key=lambda d: (d.repo, d.build_id))
    if interrupted is not None:
        deleted = [d for d in deleted if d.done]
    copies = sorted(data, key=lambda d: d.digest)
    errors = errors + [f"{d.repo}/{d.build_id}: {d.error}" for d in deleted if d.error]
    errors += [f"{data_prefix(d.digest)}: {d.error}" for d in copies if d.error]
    cancelled, unconfirmed = runs
    return CleanupReport(
        plan,
        False,
        tuple(deleted),
        tuple(cancelled),
        tuple(unconfirmed),
        tuple(errors),
        seconds,
        interrupted,
        tuple(copies),
    )


Parts = dict[tuple[str, str], dict[str, Deleted]]  # build -> "workspace"/"storage" -> result


def _add_part(parts: Parts, kind: str, part: Deleted) -> Deleted | None:
    """The build's result once both its parts are in."""
    got = parts.setdefault((part.repo, part.build_id), {})
    got[kind] = part
    if len(got) < 2:
        return None
    return _merged(got["workspace"], got["storage"])


def _gather_finished(
    kinds: Mapping[Future[Deleted], str], parts: Parts, results: dict[tuple[str, str], Deleted]
) -> None:
    """Add the builds whose two parts ended while the cleanup was interrupted (a build with
    one part done is not done: the journal keeps it)."""
    for future, kind in kinds.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            part = future.result()
            key = (part.repo, part.build_id)
            if key not in results and kind not in parts.get(key, {}):
                merged = _add_part(parts, kind, part)
                if merged is not None:
                    results[key] = merged


def cleanup(
    *,
    tree: WorkspaceTree,
    storage: Storage,
    runs: RunControl,
    root: str,
    storage_root: str,
    options: CleanupOptions,
    now: datetime | None = None,
    clock: Clock | None = None,
    on_event: Event | None = None,
    models: ModelRegistry | None = None,
) -> CleanupReport:
    """Discover, plan and (unless ``dry_run``) execute; ``root`` is checked again here."""
    clock = clock or SystemClock()
    started = clock.monotonic()
    root = check_workspace_root(root)
    if on_event is not None:
        on_event(header(root, storage_root, dry_run=options.dry_run))
    # the job and run listings go out beside the workspace listing, not after it
    with ThreadPoolExecutor(4, thread_name_prefix="cleanup-runs") as side:
        jobs = side.submit(runs.build_jobs)
        early = {r: side.submit(runs.active, r) for r in options.repos if is_build_name(r)}
        discovery = discover(
            tree,
            storage,
            root=root,
            repos=options.repos,
            want_modified=options.policy.include_unmarked,
            concurrency=options.concurrency,
            jobs=jobs.result,
        )
        late = {r: side.submit(runs.active, r) for r in discovery.repos if r not in early}
        # every active run counts: an orphan is cancelled, any other keeps its build
        active = [
            run for repo in discovery.repos for run in (early.get(repo) or late[repo]).result()
        ]
    plan = plan_cleanup(
        discovery,
        active,
        root=root,
        storage_root=storage_root,
        policy=options.policy,
        now=now or datetime.now(UTC),
    )
    if options.dry_run:
        return CleanupReport(plan, True, seconds=clock.monotonic() - started)
    done = execute_cleanup(
        plan,
        tree=tree,
        storage=storage,
        runs=runs,
        options=options,
        clock=clock,
        on_event=on_event,
        models=models,
    )
    return replace(done, seconds=clock.monotonic() - started)
