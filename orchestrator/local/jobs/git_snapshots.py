"""``git_source`` runs: one snapshot of the commit per run, and its Git tasks run from it.

As on Databricks ("Use Git with jobs"): when a run of a job with ``git_source`` starts, the
branch, tag or commit is resolved once and the run records it as
``git_source.git_snapshot.used_commit``; every Git task of the run reads that one snapshot,
whatever is pushed to the branch meanwhile. The snapshot is the commit's files written (by
:func:`~orchestrator.local.state.git_commands.export_commit`) into the workspace mirror at
``/Repos/.internal/<10 hex digits>_commits/<commit>``, the path Databricks runs such tasks
from, read-only (tasks that run from Git cannot write to workspace files); it goes when the
run ends. A notebook there runs with its folder as working directory and the snapshot's root
on ``sys.path``, as in a Git folder (the runtime's resolver knows the path).

:class:`GitSnapshots` is the scheduler's ``on_run_start``/``on_run_end``;
:class:`GitSourceTasks` wraps the task executor: a Git task's relative ``notebook_path``
becomes the notebook's path in the snapshot, and a run whose snapshot could not be made (an
unknown ``git_url``, a branch that does not exist) fails its Git tasks with the reason, naming
the URL. Tasks with ``source`` ``WORKSPACE`` run as before.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import stat
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.local.jobs.git_settings import task_source
from orchestrator.local.jobs.task_execution import TaskExecutor, TaskOutcome, TaskSpec
from orchestrator.local.state import git_commands as git
from orchestrator.local.state.git_store import GitStore, UnknownGitUrl, source_repository
from orchestrator.local.state.git_tree import SNAPSHOT_ROOT, find_notebook, snapshot_path
from orchestrator.local.state.records import RunRecord, TaskRunRecord
from orchestrator.local.state.store import Store

__all__ = ["GitSnapshots", "GitSourceTasks", "Snapshot"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """A run's snapshot: the commit used and the snapshot's workspace path (``None`` when no
    task needed its files), or why it could not be made."""

    url: str
    commit: str | None = None
    workspace_path: str | None = None
    error: str | None = None


class GitSnapshots:
    """The snapshots of the active ``git_source`` runs, by run id."""

    def __init__(self, store: Store, git_store: GitStore, *, sweep: bool) -> None:
        self.store = store
        self.git = git_store
        self._lock = threading.Lock()
        self._runs: dict[int, Snapshot] = {}
        if sweep:  # no run is active when a sole workspace starts: what is there was left
            _remove(store.local_path(SNAPSHOT_ROOT))

    def snapshot(self, run_id: int) -> Snapshot | None:
        """The run's snapshot; ``None`` when the run has no ``git_source``."""
        with self._lock:
            return self._runs.get(run_id)

    def prepare(self, doc: RunRecord) -> RunRecord:
        """Resolve and write the snapshot of a starting run (``Scheduler.on_run_start``); the
        run's new ``git_source`` (with ``git_snapshot``) when it has one."""
        git_source = doc.get("git_source")
        if not isinstance(git_source, dict):
            return {}
        run_id = int(doc["run_id"])
        url = str(git_source.get("git_url", ""))
        needs_files = any(
            task_source(task.get("notebook_task") or {}, has_git_source=True) == "GIT"
            for task in doc.get("tasks", [])
            if isinstance(task.get("notebook_task"), dict)
        )
        try:
            snapshot = self._make(run_id, git_source, needs_files=needs_files)
        except (UnknownGitUrl, git.GitError) as exc:
            message = (
                str(exc) if isinstance(exc, UnknownGitUrl) else _checkout_error(git_source, exc)
            )
            log.info("run %s: %s", run_id, message)
            snapshot = Snapshot(url, error=message)
        with self._lock:
            self._runs[run_id] = snapshot
        if snapshot.commit is None:
            return {}
        updated = copy.deepcopy(git_source)
        updated["git_snapshot"] = {"used_commit": snapshot.commit}
        return {"git_source": updated}

    def _make(self, run_id: int, git_source: dict[str, Any], *, needs_files: bool) -> Snapshot:
        url = str(git_source.get("git_url", ""))
        source_dir = git.absolute_git_dir(source_repository(self.git, url))
        used = (git_source.get("git_snapshot") or {}).get("used_commit")
        if isinstance(used, str) and used:  # the run's commit is known already (a repair)
            target = git.resolve(source_dir, commit=used)
        else:
            target = git.resolve(
                source_dir,
                branch=git_source.get("git_branch"),
                tag=git_source.get("git_tag"),
                commit=git_source.get("git_commit"),
            )
        if not needs_files:
            return Snapshot(url, target.commit)
        path = snapshot_path(run_id, target.commit)
        local = self.store.local_path(path)
        _remove(local)
        try:
            patterns = git.cone_patterns(git_source.get("sparse_checkout")) or ()
            git.export_commit(source_dir, target.commit, local, patterns=patterns)
        except BaseException:
            _remove(local)
            raise
        _read_only(local)
        return Snapshot(url, target.commit, path)

    def release(self, run_id: int) -> None:
        """The run ended (``Scheduler.on_run_end``): its snapshot goes."""
        with self._lock:
            snapshot = self._runs.pop(run_id, None)
        if snapshot is not None and snapshot.workspace_path is not None:
            local = self.store.local_path(snapshot.workspace_path)
            _remove(local)
            _remove_if_empty(local.parent)


class GitSourceTasks:
    """A :class:`TaskExecutor` that runs the Git tasks of ``git_source`` runs from their
    run's snapshot, through ``inner`` (which runs every other task as it is)."""

    def __init__(self, inner: TaskExecutor, snapshots: GitSnapshots) -> None:
        self.inner = inner
        self.snapshots = snapshots

    def __call__(self, spec: TaskSpec, cancel: threading.Event) -> TaskOutcome:
        notebook = spec.task.get("notebook_task")
        if not isinstance(notebook, dict):
            return self.inner(spec, cancel)
        snapshot = self.snapshots.snapshot(spec.run_id)
        if task_source(notebook, has_git_source=snapshot is not None) != "GIT":
            return self.inner(spec, cancel)
        if snapshot is None:
            return _failed(
                "The task's notebook is in Git (source GIT) but the run has no git_source."
            )
        if snapshot.error is not None:
            return _failed(snapshot.error)
        relative = str(notebook.get("notebook_path", "")).strip("/")
        root = snapshot.workspace_path
        assert root is not None and snapshot.commit is not None
        found = find_notebook(self.snapshots.store.local_path(root), relative)
        if found is None:
            return _failed(
                f"Notebook not found: {relative} in {snapshot.url} at commit {snapshot.commit}"
            )
        name = found[0].relative_to(self.snapshots.store.local_path(root)).as_posix()
        stem = name[: name.rfind(".")] if name.rfind("/") < name.rfind(".") else name
        task: TaskRunRecord = copy.copy(spec.task)
        task["notebook_task"] = {
            **notebook,
            "notebook_path": f"{root}/{stem}",
            "source": "WORKSPACE",
        }
        return self.inner(replace(spec, task=task), cancel)


def _failed(message: str) -> TaskOutcome:
    return TaskOutcome("FAILED", message, {"error": message})


def _checkout_error(git_source: dict[str, Any], exc: Exception) -> str:
    return f"Cannot check out {git_source.get('git_url')}: {exc}"


def _read_only(root: Path) -> None:
    """Files and folders of ``root`` made read-only (``root`` itself included)."""
    for folder, dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
        for name in dirs:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(0o555)
    root.chmod(0o555)


def _remove(root: Path) -> None:
    """``root`` and everything in it, read-only folders included; nothing when it is not there."""
    if not root.exists():
        return
    for folder, dirs, _files in os.walk(root):
        for name in dirs:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(0o755)
    root.chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: another run's snapshot of the commit
        folder.rmdir()
