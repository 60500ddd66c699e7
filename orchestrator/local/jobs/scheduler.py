"""Run life cycle of the local workspace: queueing, task DAGs, timeouts, cancellation, recovery.

A run moves QUEUED -> PENDING -> RUNNING -> TERMINATING -> TERMINATED (or INTERNAL_ERROR), as
on the service. Each run has a coordinator thread; its tasks run in worker threads, at most
``max_workers`` at a time across all runs, independent tasks in parallel. The run record is
the API's JSON (:class:`~orchestrator.local.state.records.RunRecord`), kept in memory while the
run is active and saved on every state change; what only the scheduler needs (the run's
timeout, its cancel message, each task's resolved parameters) stays in its
:class:`ActiveRun`. The task itself is done by a :data:`TaskExecutor` (a notebook in a kernel,
in production).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.files import write_json_atomically
from orchestrator.local.jobs.control_tasks import CONTROL_TYPES, OUTCOME
from orchestrator.local.jobs.execution_contexts import (
    ExecutionContexts,
    cluster_of,
)
from orchestrator.local.jobs.run_state import copy_record, finish, set_state
from orchestrator.local.jobs.task_execution import TaskExecutor, TaskOutcome, TaskSpec, masked
from orchestrator.local.jobs.task_graph import blocked_by, dependencies, run_result
from orchestrator.local.runtime.clusters import Clusters
from orchestrator.local.state.records import (
    ACTIVE_LIFE_CYCLE_STATES,
    JobSettings,
    ResultState,
    RunRecord,
    TaskRunRecord,
)
from orchestrator.local.state.redaction import secret_values
from orchestrator.local.state.store import Store, now_ms

__all__ = ["ActiveRun", "Scheduler"]

log = logging.getLogger(__name__)

#: how often a run's coordinator looks at its deadline while tasks run
_TICK_SECONDS = 0.05


@dataclass
class ActiveRun:
    """A run the scheduler holds: its record and the bookkeeping that is not the API's."""

    doc: RunRecord
    job_id: int | None
    token: str | None
    timeout_seconds: float | None
    #: task key -> the task's parameters, merged and resolved when the run was made
    task_parameters: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_message: str = ""
    queued: bool = False
    timed_out: bool = False
    task_cancels: dict[str, threading.Event] = field(default_factory=dict)
    #: a repaired run's tasks that do not run again, with their results (``runs/repair``)
    done_before: dict[str, ResultState] = field(default_factory=dict)

    @property
    def run_id(self) -> int:
        return int(self.doc["run_id"])

    def stop_tasks(self) -> None:
        self.cancel.set()
        for event in self.task_cancels.values():
            event.set()


@dataclass
class _Progress:
    """A run's tasks while its coordinator walks them: results and the ones running."""

    tasks: dict[str, TaskRunRecord]
    deps: dict[str, list[str]]
    done: dict[str, ResultState] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)

    def ready(self) -> list[str]:
        """Tasks neither done nor running whose dependencies are all done."""
        return [
            key
            for key in self.tasks
            if key not in self.done
            and key not in self.running
            and all(d in self.done for d in self.deps[key])
        ]

    @property
    def complete(self) -> bool:
        return len(self.done) == len(self.tasks)


class Scheduler:
    def __init__(
        self,
        store: Store,
        clusters: Clusters,
        executor: TaskExecutor,
        *,
        max_workers: int,
        clock: Callable[[], float] = time.monotonic,
        contexts: ExecutionContexts | None = None,
    ) -> None:
        self.store = store
        self.clusters = clusters
        self.executor = executor
        #: the clusters' execution contexts (``jobs/execution_contexts.py``): a task takes one
        #: when it is dispatched, as the service starts it, and gives it back when it ends
        self.contexts = contexts or ExecutionContexts()
        self.clock = clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._workers = threading.BoundedSemaphore(max_workers)
        self._active: dict[int, ActiveRun] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False
        #: called with a copy of each task run's record once it has ended, in the task's
        #: thread (the workspace renders its notebook export then, see ``JobsApi.prerender``)
        self.on_task_end: Callable[[TaskRunRecord], None] | None = None
        #: called in a run's coordinator thread as it starts, with a copy of its record; what
        #: it returns is merged into the record (a ``git_source`` run's snapshot, see
        #: ``jobs/git_snapshots.py``), and ``on_run_end`` is called with the run's id once it
        #: has ended
        self.on_run_start: Callable[[RunRecord], RunRecord] | None = None
        self.on_run_end: Callable[[int], None] | None = None
        self._recover()

    # --- recovery and shutdown -------------------------------------------------------------
    def _recover(self) -> None:
        """Runs that were active when the server stopped end now, never stay RUNNING."""
        for run_id in self.store.active_run_ids():
            doc = self.store.get_run(run_id)
            if doc is None:
                continue
            message = "The local workspace stopped while this run was active."
            queued = doc.get("state", {}).get("life_cycle_state") == "QUEUED"
            result: ResultState = "CANCELED" if queued else "INTERNAL_ERROR"
            for task in doc.get("tasks", []):
                if task.get("state", {}).get("life_cycle_state") in ACTIVE_LIFE_CYCLE_STATES:
                    finish(task, result, message)
            finish(doc, result, message)
            self.store.save_run(doc, active=False)

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
            runs = list(self._active.values())
        for run in runs:
            self.cancel(run.run_id, message="The local workspace is shutting down.")
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- queries -------------------------------------------------------------------------
    def get(self, run_id: int) -> RunRecord | None:
        with self._lock:
            active = self._active.get(run_id)
            if active is not None:
                return copy_record(active.doc)
        return self.store.get_run(run_id)

    def is_active(self, run_id: int) -> bool:
        with self._lock:
            return run_id in self._active

    def wait_idle(self, run_id: int, timeout: float) -> bool:
        """Block until ``run_id`` is no longer active (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while run_id in self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    # --- submission ----------------------------------------------------------------------
    def submit(
        self,
        doc: RunRecord,
        *,
        job_settings: JobSettings | None,
        token: str | None,
        timeout_seconds: float | None = None,
        task_parameters: Mapping[str, Mapping[str, str]] | None = None,
    ) -> RunRecord:
        """Start (or queue, or skip) a run whose record is already built with its tasks."""
        job_id = doc.get("job_id") if job_settings is not None else None
        run = ActiveRun(
            doc, job_id, token, timeout_seconds or None, task_parameters=task_parameters or {}
        )
        with self._lock:
            if self._stopping:
                raise RuntimeError("the local workspace is shutting down")
            for task in doc["tasks"]:
                self.store.add_task_run(task["run_id"], doc["run_id"])
            if job_id is not None and self._running_count(job_id) >= _max_runs(job_settings):
                if not (job_settings or {}).get("queue", {}).get("enabled", False):
                    self._skip(run, _max_runs(job_settings))
                    self.store.save_run(doc, active=False, token=token)
                    return copy_record(doc)
                self._queue(run)
            else:
                self._active[run.run_id] = run
                self._start(run)
            self.store.save_run(doc, active=run.run_id in self._active, token=token)
            return copy_record(doc)

    def repair(
        self,
        doc: RunRecord,
        *,
        done_before: Mapping[str, ResultState],
        timeout_seconds: float | None,
        task_parameters: Mapping[str, Mapping[str, str]],
    ) -> None:
        """Start an ended run again (``runs/repair``): its tasks in ``done_before`` keep their
        results, the others (already given new task run ids, PENDING) run."""
        run = ActiveRun(
            doc,
            doc.get("job_id"),
            None,
            timeout_seconds or None,
            task_parameters=task_parameters,
            done_before=dict(done_before),
        )
        with self._lock:
            if self._stopping:
                raise RuntimeError("the local workspace is shutting down")
            if run.run_id in self._active:
                raise RuntimeError(f"run {run.run_id} is active")
            for task in doc["tasks"]:
                self.store.add_task_run(task["run_id"], doc["run_id"])
            self._active[run.run_id] = run
            self._start(run)
            self.store.save_run(doc, active=True)

    def _skip(self, run: ActiveRun, max_runs: int) -> None:
        message = (
            f"Skipping this run because the limit of {max_runs} maximum concurrent runs "
            "has been reached."
        )
        for task in run.doc["tasks"]:
            set_state(task, "SKIPPED", None, message)
        run.doc["end_time"] = now_ms()
        set_state(run.doc, "SKIPPED", "MAXIMUM_CONCURRENT_RUNS_REACHED", message)

    def _queue(self, run: ActiveRun) -> None:
        run.queued = True
        set_state(
            run.doc, "QUEUED", None, "Queued due to reaching maximum concurrent runs of the job."
        )
        for task in run.doc["tasks"]:
            set_state(task, "QUEUED")
        self._active[run.run_id] = run

    def _running_count(self, job_id: int) -> int:
        return sum(1 for r in self._active.values() if r.job_id == job_id and not r.queued)

    def _start(self, run: ActiveRun) -> None:
        run.queued = False
        set_state(run.doc, "PENDING", None, "Waiting for the local cluster")
        for task in run.doc["tasks"]:
            if task["task_key"] not in run.done_before:
                set_state(task, "PENDING")
        if not run.done_before:  # a repaired run keeps its start
            run.doc["start_time"] = now_ms()
        thread = threading.Thread(
            target=self._coordinate, args=(run,), name=f"run-{run.run_id}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _release(self, run: ActiveRun) -> None:
        """The run ended: drop it and start the oldest queued runs of its job."""
        with self._lock:
            self._active.pop(run.run_id, None)
            self.store.save_run(run.doc, active=False, token=run.token)
            if run.job_id is not None and not self._stopping:
                queued = sorted(
                    (r for r in self._active.values() if r.job_id == run.job_id and r.queued),
                    key=lambda r: r.run_id,
                )
                job = self.store.get_job(run.job_id)
                free = _max_runs(job["settings"] if job else None) - self._running_count(run.job_id)
                for nxt in queued[: max(0, free)]:
                    self._start(nxt)
                    self.store.save_run(nxt.doc, active=True, token=nxt.token)
            self._changed.notify_all()

    # --- cancellation --------------------------------------------------------------------
    def cancel(self, run_id: int, *, message: str = "Run cancelled by user.") -> bool:
        """Cancel an active run; False when it is not active (already ended or unknown)."""
        with self._lock:
            run = self._active.get(run_id)
            if run is None:
                return False
            run.cancel_message = message
            run.stop_tasks()
            if run.queued:
                for task in run.doc["tasks"]:
                    finish(task, "CANCELED", message)
                finish(run.doc, "CANCELED", message)
                self._release(run)
        return True

    # --- execution -----------------------------------------------------------------------
    def output_path(self, task_run_id: int) -> Path:
        return self.store.runs_root / str(task_run_id) / "output.json"

    def _write_output(self, task_run_id: int, output: dict[str, Any]) -> None:
        write_json_atomically(self.output_path(task_run_id), output, mode=0o644)

    def _save(self, run: ActiveRun) -> None:
        with self._lock:
            # a worker's last save can come after the run ended and was saved inactive
            if self._active.get(run.run_id) is run:
                self.store.save_run(run.doc, active=True, token=run.token)
            self._changed.notify_all()

    def _coordinate(self, run: ActiveRun) -> None:
        # the run's timeout counts from its start, the wait for its clusters included
        deadline = self.clock() + run.timeout_seconds if run.timeout_seconds else None
        try:
            self._prepare(run)
            if self._await_clusters(run):
                self._run_tasks(run, deadline)
        except Exception as exc:
            log.exception("run %s failed inside the local workspace", run.run_id)
            with self._lock:
                for task in run.doc["tasks"]:
                    if task["state"]["life_cycle_state"] in ACTIVE_LIFE_CYCLE_STATES:
                        finish(task, "INTERNAL_ERROR", str(exc))
                finish(run.doc, "INTERNAL_ERROR", f"Internal error: {exc}")
        finally:
            self._release(run)
            if self.on_run_end is not None:
                try:
                    self.on_run_end(run.run_id)
                except Exception:
                    log.exception("ending run %s left something behind", run.run_id)

    def _prepare(self, run: ActiveRun) -> None:
        """``on_run_start``'s fields merged into the run's record, which is saved."""
        if self.on_run_start is None:
            return
        fields = self.on_run_start(copy_record(run.doc))
        if fields:
            with self._lock:
                run.doc.update(fields)
            self._save(run)

    def _await_clusters(self, run: ActiveRun) -> bool:
        """PENDING until the tasks' clusters run; False when a cluster does not exist (the
        run has ended then)."""
        doc = run.doc
        waiting = [t for t in doc["tasks"] if t["task_key"] not in run.done_before]
        named = {t.get("existing_cluster_id") for t in waiting} - {None}
        for cluster_id in sorted(str(c) for c in named):
            if not self.clusters.exists(cluster_id):
                message = f"Cluster {cluster_id} does not exist"
                with self._lock:
                    for task in waiting:
                        finish(task, "INTERNAL_ERROR", message)
                    finish(doc, "INTERNAL_ERROR", message)
                return False
            if not self.clusters.wait_running(cluster_id, run.cancel):
                break
        if any(t.get("existing_cluster_id") is None for t in waiting):
            self.clusters.ensure_engine(None)  # job/serverless compute: the default engine
        with self._lock:
            if not run.done_before:
                doc["setup_duration"] = now_ms() - doc["start_time"]
            if not run.cancel.is_set():
                set_state(doc, "RUNNING", None, "In run")
        self._save(run)
        return True

    def _run_tasks(self, run: ActiveRun, deadline: float | None) -> None:
        """Start every task whose dependencies are done until all have ended (stopping them
        at ``deadline``), then end the run with their result."""
        tasks = {t["task_key"]: t for t in run.doc["tasks"]}
        progress = _Progress(tasks, dependencies(run.doc["tasks"]))
        progress.done.update(run.done_before)
        with self._changed:
            while not progress.complete:
                if deadline is not None and self.clock() >= deadline and not run.timed_out:
                    run.timed_out = True
                    run.stop_tasks()
                for key in progress.ready():
                    self._dispatch(run, progress, key)
                if not progress.complete:
                    self._changed.wait(_TICK_SECONDS)
            set_state(run.doc, "TERMINATING", None, "Finishing the run")
        self._save(run)
        with self._lock:
            result = run_result(
                progress.done.values(), cancelled=run.cancel.is_set(), timed_out=run.timed_out
            )
            message = {
                "CANCELED": run.cancel_message or "Run cancelled.",
                "TIMEDOUT": "Run timed out.",
                "FAILED": "Workload failed, see run output for details",
            }.get(result, "")
            finish(run.doc, result, message)
            doc = run.doc
            doc["execution_duration"] = max(
                0, doc["end_time"] - doc["start_time"] - doc.get("setup_duration", 0)
            )

    def _dispatch(self, run: ActiveRun, progress: _Progress, key: str) -> None:
        """A ready task (under the lock): ended at once when cancelled or when ``run_if``
        blocks it, else started in a worker thread."""
        task = progress.tasks[key]
        if run.cancel.is_set():
            finish(task, "CANCELED", "Not started: the run was cancelled")
            progress.done[key] = "CANCELED"
            return
        upstream = _upstream(task, progress)
        if upstream and all(r == "EXCLUDED" for r in upstream):
            # every dependency was excluded: so is this task, whatever its run_if
            blocked: ResultState | None = "EXCLUDED"
        else:  # an excluded task counts as a success
            results = ["SUCCESS" if r == "EXCLUDED" else r for r in upstream]
            blocked = blocked_by(str(task.get("run_if", "ALL_SUCCESS")), results)
        if blocked is not None:
            reason = "Excluded" if blocked == "EXCLUDED" else "Upstream task(s) did not succeed"
            finish(task, blocked, reason)
            task["state"]["life_cycle_state"] = "SKIPPED"
            progress.done[key] = blocked
            return
        control = any(isinstance(task.get(kind), dict) for kind in CONTROL_TYPES)
        if not control and not self.contexts.open(cluster_of(run.run_id, task)):
            finish(task, "FAILED", self.contexts.refusal)
            progress.done[key] = "FAILED"
            return
        cancel = threading.Event()
        run.task_cancels[key] = cancel
        timeout = task.get("timeout_seconds")
        spec = TaskSpec(
            run_id=run.run_id,
            task_run_id=int(task["run_id"]),
            task_key=key,
            task=task,
            parameters=dict(run.task_parameters.get(key, {})),
            timeout_seconds=float(timeout) if timeout else None,
            job_id=run.job_id,
        )
        progress.running.add(key)
        threading.Thread(
            target=self._work,
            args=(run, progress, spec, cancel),
            name=f"task-{spec.task_run_id}",
            daemon=True,
        ).start()

    def _work(
        self, run: ActiveRun, progress: _Progress, spec: TaskSpec, cancel: threading.Event
    ) -> None:
        """A task's worker thread: wait for a worker slot, run the task, record its end."""
        task = progress.tasks[spec.task_key]
        control = any(isinstance(task.get(kind), dict) for kind in CONTROL_TYPES)
        # a control-flow task only waits: it takes no worker slot (a run_job_task's own
        # run needs them)
        with contextlib.nullcontext() if control else self._workers:
            if cancel.is_set():
                outcome = TaskOutcome("CANCELED", run.cancel_message or "Cancelled")
            else:
                with self._lock:
                    task["start_time"] = now_ms()
                    set_state(task, "RUNNING", None, "In run")
                self._save(run)
                try:
                    outcome = self.executor(spec, cancel)
                except Exception as exc:
                    log.exception("task %s of run %s crashed", spec.task_key, run.run_id)
                    outcome = TaskOutcome("FAILED", f"Internal error: {exc}")
        with self._changed:
            if outcome.result_state == "CANCELED" and run.timed_out:
                outcome = TaskOutcome("TIMEDOUT", "Run timed out", outcome.output)
            outcome = masked(outcome, secret_values(self.store))
            self._write_output(spec.task_run_id, outcome.output)
            condition = task.get("condition_task")
            if isinstance(condition, dict) and OUTCOME in outcome.output:
                condition["outcome"] = str(outcome.output[OUTCOME])
            finish(task, outcome.result_state, outcome.state_message)
            progress.done[spec.task_key] = outcome.result_state
            progress.running.discard(spec.task_key)
            if not control:
                self.contexts.close(cluster_of(run.run_id, task))
            self._changed.notify_all()
            ended = copy_record(task)
        self._save(run)
        if self.on_task_end is not None:
            self.on_task_end(ended)


def _upstream(task: TaskRunRecord, progress: _Progress) -> list[ResultState]:
    """The results of a task's dependencies; one on a condition task's outcome that did not
    come out counts as EXCLUDED."""
    results: list[ResultState] = []
    for dep in task.get("depends_on") or []:
        key = str(dep["task_key"])
        result = progress.done[key]
        wanted = dep.get("outcome")
        if wanted is not None and result == "SUCCESS":
            condition = progress.tasks[key].get("condition_task") or {}
            if str(condition.get("outcome")) != str(wanted):
                result = "EXCLUDED"
        results.append(result)
    return results


def _max_runs(settings: JobSettings | None) -> int:
    return int((settings or {}).get("max_concurrent_runs") or 1)
