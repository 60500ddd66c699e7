"""Bounded disk for the local workspace: run scratch goes when a run ends, old runs expire.

Under ``<state_dir>/runs/`` each run and each task run has a folder named by its id:
``output.json`` (what ``runs/get-output`` returns), ``executed_notebook.ipynb`` (a
``dbutils.notebook.run`` child is a run of its own, with its own folder), ``export.html`` (the
``runs/export`` cache), ``test_counts.json``
(counts a build reported) and, while a task runs, ``scratch/`` (the kernel's working files:
``%pip`` installs, IPython profile, control files). The executor keeps the executed notebooks
and deletes ``scratch/`` when the task ends (:func:`keep_executed`).

:func:`prune` applies a :class:`Retention`: ended runs beyond the newest ``max_runs`` or ended
more than ``max_age_days`` ago lose their document and their folders; folders that no run
refers to and scratch that no active run owns are removed too, and temporary files older than
an hour. Active runs are never touched. The local workspace prunes when it starts and every
``interval_seconds`` while it runs; ``orchestrator local prune`` does it on demand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.local.state.store import Store, now_ms

__all__ = [
    "EXECUTED_NOTEBOOK",
    "PruneReport",
    "Retention",
    "delete_run_files",
    "executed_notebook",
    "keep_executed",
    "prune",
    "prune_state_dir",
    "tree_size",
]

log = logging.getLogger(__name__)

EXECUTED_NOTEBOOK = "executed_notebook.ipynb"
TMP_MAX_AGE_SECONDS = 3600.0
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class Retention:
    """What the local workspace keeps of ended runs. ``None`` turns a limit off.

    The defaults follow the service, which keeps job run history for 60 days; the count bounds
    a busy CI agent's disk sooner.
    """

    max_runs: int | None = 1000
    max_age_days: float | None = 60.0
    interval_seconds: float = 3600.0  # how often a running workspace prunes

    def __post_init__(self) -> None:
        if self.max_runs is not None and self.max_runs < 0:
            raise ValueError("max_runs must not be negative")
        if self.max_age_days is not None and self.max_age_days < 0:
            raise ValueError("max_age_days must not be negative")
        if self.interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")


@dataclass(frozen=True)
class PruneReport:
    runs_deleted: int
    scratch_deleted: int
    folders_deleted: int  # run folders no run refers to, and stale temporary files
    bytes_before: int
    bytes_after: int

    @property
    def bytes_freed(self) -> int:
        return max(0, self.bytes_before - self.bytes_after)

    def summary(self) -> str:
        mib = 1024 * 1024
        return (
            f"pruned {self.runs_deleted} runs, {self.scratch_deleted} scratch folders and "
            f"{self.folders_deleted} stray files or folders: "
            f"{self.bytes_before / mib:.1f} MiB -> {self.bytes_after / mib:.1f} MiB"
        )


def tree_size(root: Path) -> int:
    """Bytes of the files under ``root`` (links not followed)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size  # noqa: PTH118
    return total


def _remove(path: Path) -> bool:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
        return not path.exists()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def keep_executed(scratch: Path, task_dir: Path) -> Path:
    """Move the executed notebooks out of ``scratch`` into ``task_dir`` (same relative paths:
    those of children that ran unrecorded stay under ``control/``), delete ``scratch``; the
    kept notebook."""
    for source in sorted(scratch.rglob(EXECUTED_NOTEBOOK)):
        target = task_dir / source.relative_to(scratch)
        with contextlib.suppress(OSError):
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)
    _remove(scratch)
    return task_dir / EXECUTED_NOTEBOOK


def executed_notebook(store: Store, task_run_id: int) -> Path | None:
    """A task run's executed notebook (kept by :func:`keep_executed`, or still in the scratch
    folder a debugging workspace keeps); None when it has none."""
    task_dir = store.runs_root / str(task_run_id)
    for candidate in (task_dir / EXECUTED_NOTEBOOK, task_dir / "scratch" / EXECUTED_NOTEBOOK):
        if candidate.is_file():
            return candidate
    return None


def delete_run_files(store: Store, run_id: int, task_run_ids: list[int]) -> None:
    for ident in (run_id, *task_run_ids):
        _remove(store.runs_root / str(ident))


def _expired(store: Store, retention: Retention, now: int) -> list[tuple[int, list[int]]]:
    cutoff = None if retention.max_age_days is None else now - retention.max_age_days * _DAY_MS
    doomed = []
    for index, (run_id, ended, tasks) in enumerate(store.ended_runs()):
        too_many = retention.max_runs is not None and index >= retention.max_runs
        if too_many or (cutoff is not None and ended < cutoff):
            doomed.append((run_id, tasks))
    return doomed


def _sweep_runs_root(store: Store, *, last_id: int) -> tuple[int, int]:
    """Scratch of runs that are not active, and folders of runs that no longer exist."""
    known, active = store.run_ids_in_use()
    scratch = strays = 0
    for folder in store.runs_root.iterdir():
        if not folder.name.isdigit() or int(folder.name) > last_id:
            continue  # not a run's, or a run newer than this pass
        ident = int(folder.name)
        if ident in active:
            continue
        if ident not in known:
            strays += _remove(folder)
        elif (folder / "scratch").exists():
            scratch += _remove(folder / "scratch")
    return scratch, strays


def _sweep_tmp(store: Store) -> int:
    cutoff = time.time() - TMP_MAX_AGE_SECONDS
    removed = 0
    for entry in store.tmp_root.iterdir():
        with contextlib.suppress(OSError):
            if entry.lstat().st_mtime < cutoff:
                removed += _remove(entry)
    return removed


def prune(
    store: Store, retention: Retention, *, now: int | None = None, measure: bool = True
) -> PruneReport:
    """Apply ``retention`` to the runs in ``store``; see the module docstring. Without
    ``measure`` the report's sizes are 0 (walking a large state dir costs)."""
    before = tree_size(store.state_dir) if measure else 0
    last_id = store.last_id("run")
    doomed = _expired(store, retention, now if now is not None else now_ms())
    for run_id, tasks in doomed:
        store.delete_run(run_id)
        delete_run_files(store, run_id, tasks)
    scratch, strays = _sweep_runs_root(store, last_id=last_id)
    strays += _sweep_tmp(store)
    after = tree_size(store.state_dir) if measure else 0
    report = PruneReport(len(doomed), scratch, strays, before, after)
    if doomed or scratch or strays:
        log.info("local workspace: pruned %d runs, %d scratch folders", len(doomed), scratch)
    return report


def prune_state_dir(state_dir: Path, retention: Retention | None = None) -> PruneReport:
    """:func:`prune` on a state dir, whether or not a local workspace is serving it."""
    if not (state_dir / "state.db").is_file():
        raise FileNotFoundError(f"{state_dir} is not the state dir of a local workspace")
    store = Store(state_dir)
    try:
        report = prune(store, retention or Retention())
    finally:
        store.close()  # checkpoints the write-ahead log: measure after it
    return replace(report, bytes_after=tree_size(state_dir))
