"""Run life cycle of the local workspace: queueing, task DAGs, timeouts, cancellation, recovery.

A run moves QUEUED -> PENDING -> RUNNING -> TERMINATING -> TERMINATED (or INTERNAL_ERROR), as
on the service. Each run has a coordinator thread; its tasks run in worker threads, at most
``max_workers`` at a time across all runs, independent tasks in parallel. The run document is
the API's JSON, kept in memory while the run is active and saved on every state change.
The task itself is done by a :data:`TaskExecutor` (a notebook in a kernel, in production).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from orchestrator.local.clusters import Clusters
from orchestrator.local.store import Store, now_ms

__all__ = ["Scheduler", "TaskExecutor", "TaskOutcome", "TaskSpec"]

log = logging.getLogger(__name__)

ACTIVE_STATES = ("QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING_FOR_RETRY")
_TERMINATION = {
    "SUCCESS": ("SUCCESS", "SUCCESS"),
    "FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "TIMEDOUT": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "CANCELED": ("USER_CANCELED", "SUCCESS"),
    "UPSTREAM_FAILED": ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
    "UPSTREAM_CANCELED": ("USER_CANCELED", "SUCCESS"),
    "MAXIMUM_CONCURRENT_RUNS_REACHED": ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR"),
    "INTERNAL_ERROR": ("INTERNAL_ERROR", "INTERNAL_ERROR"),
}


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task executor needs; ``parameters`` already merged and resolved."""

    run_id: int
    task_run_id: int
    task_key: str
    task: dict[str, Any]
    parameters: dict[str, str]
    timeout_seconds: float | None


@dataclass(frozen=True)
class TaskOutcome:
    result_state: str  # SUCCESS, FAILED, TIMEDOUT, CANCELED
    state_message: str = ""
    output: dict[str, Any] = field(default_factory=dict)


class TaskExecutor(Protocol):
    def __call__(self, spec: TaskSpec, cancel: threading.Event) -> TaskOutcome: ...


def set_state(
    doc: dict[str, Any], life_cycle: str, result: str | None = None, message: str = ""
) -> None:
    """Set both the 2.1 ``state`` and the 2.2 ``status`` of a run or task document."""
    state: dict[str, Any] = {
        "life_cycle_state": life_cycle,
        "state_message": message,
        "user_cancelled_or_timedout": result in ("CANCELED", "TIMEDOUT"),
    }
    if result is not None:
        state["result_state"] = result
    doc["state"] = state
    status: dict[str, Any] = {
        "state": "TERMINATED"
        if life_cycle in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")
        else life_cycle
    }
    if result is not None or life_cycle == "INTERNAL_ERROR":
        code, kind = _TERMINATION.get(
            result or "INTERNAL_ERROR", ("INTERNAL_ERROR", "INTERNAL_ERROR")
        )
        if life_cycle == "INTERNAL_ERROR":
            code, kind = "INTERNAL_ERROR", "INTERNAL_ERROR"
        status["termination_details"] = {"code": code, "type": kind, "message": message}
    if life_cycle == "QUEUED":
        status["queue_details"] = {"code": "ACTIVE_RUNS_LIMIT_REACHED", "message": message}
    doc["status"] = status


@dataclass
class _ActiveRun:
    doc: dict[str, Any]
    job_id: int | None
    token: str | None
    timeout_seconds: float | None
    cancel: threading.Event = field(default_factory=threading.Event)
    queued: bool = False
    timed_out: bool = False
    task_cancels: dict[str, threading.Event] = field(default_factory=dict)


class Scheduler:
    def __init__(
        self,
        store: Store,
        clusters: Clusters,
        executor: TaskExecutor,
        *,
        max_workers: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clusters = clusters
        self.executor = executor
        self.clock = clock
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._workers = threading.BoundedSemaphore(max_workers)
        self._active: dict[int, _ActiveRun] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False
        #: called with a copy of each task run's document once it has ended, in the task's
        #: thread (the workspace renders its notebook export then, see ``JobsApi.prerender``)
        self.on_task_end: Callable[[dict[str, Any]], None] | None = None
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
            for task in doc.get("tasks", []):
                if task.get("state", {}).get("life_cycle_state") in ACTIVE_STATES:
                    _finish(task, "CANCELED" if queued else "INTERNAL_ERROR", message)
            _finish(doc, "CANCELED" if queued else "INTERNAL_ERROR", message)
            self.store.save_run(doc, active=False)

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
            runs = list(self._active.values())
        for run in runs:
            self.cancel(int(run.doc["run_id"]), message="The local workspace is shutting down.")
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- queries -------------------------------------------------------------------------
    def get(self, run_id: int) -> dict[str, Any] | None:
        with self._lock:
            active = self._active.get(run_id)
            if active is not None:
                return _copy(active.doc)
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
        doc: dict[str, Any],
        *,
        job_settings: dict[str, Any] | None,
        token: str | None,
    ) -> dict[str, Any]:
        """Start (or queue, or skip) a run whose document is already built with its tasks."""
        settings = job_settings or {}
        job_id = doc.get("job_id") if job_settings is not None else None
        max_runs = int(settings.get("max_concurrent_runs") or 1)
        queue_enabled = bool((settings.get("queue") or {}).get("enabled", False))
        timeout = doc.pop("_timeout_seconds", None)
        run = _ActiveRun(doc, job_id, token, float(timeout) if timeout else None)
        with self._lock:
            if self._stopping:
                raise RuntimeError("the local workspace is shutting down")
            for task in doc["tasks"]:
                self.store.add_task_run(task["run_id"], doc["run_id"])
            running = self._running_count(job_id) if job_id is not None else 0
            if job_id is not None and running >= max_runs:
                if not queue_enabled:
                    message = (
                        "Skipping this run because the limit of "
                        f"{max_runs} maximum concurrent runs has been reached."
                    )
                    for task in doc["tasks"]:
                        set_state(task, "SKIPPED", None, message)
                    doc["end_time"] = now_ms()
                    set_state(doc, "SKIPPED", "MAXIMUM_CONCURRENT_RUNS_REACHED", message)
                    self.store.save_run(doc, active=False, token=token)
                    return _copy(doc)
                run.queued = True
                set_state(
                    doc,
                    "QUEUED",
                    None,
                    "Queued due to reaching maximum concurrent runs of the job.",
                )
                for task in doc["tasks"]:
                    set_state(task, "QUEUED")
                self._active[doc["run_id"]] = run
                self.store.save_run(doc, active=True, token=token)
                return _copy(doc)
            self._active[doc["run_id"]] = run
            self._start(run)
            self.store.save_run(doc, active=True, token=token)
            return _copy(doc)

    def _running_count(self, job_id: int) -> int:
        return sum(1 for r in self._active.values() if r.job_id == job_id and not r.queued)

    def _start(self, run: _ActiveRun) -> None:
        run.queued = False
        set_state(run.doc, "PENDING", None, "Waiting for the local cluster")
        for task in run.doc["tasks"]:
            set_state(task, "PENDING")
        run.doc["start_time"] = now_ms()
        thread = threading.Thread(
            target=self._coordinate, args=(run,), name=f"run-{run.doc['run_id']}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _release(self, run: _ActiveRun) -> None:
        """The run ended: drop it and start the oldest queued run of its job."""
        with self._lock:
            self._active.pop(run.doc["run_id"], None)
            self.store.save_run(run.doc, active=False, token=run.token)
            if run.job_id is not None and not self._stopping:
                queued = sorted(
                    (r for r in self._active.values() if r.job_id == run.job_id and r.queued),
                    key=lambda r: int(r.doc["run_id"]),
                )
                job = self.store.get_job(run.job_id)
                max_runs = int(((job or {}).get("settings") or {}).get("max_concurrent_runs") or 1)
                free = max_runs - self._running_count(run.job_id)
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
            run.doc["_cancel_message"] = message
            run.cancel.set()
            for event in run.task_cancels.values():
                event.set()
            if run.queued:
                for task in run.doc["tasks"]:
                    _finish(task, "CANCELED", message)
                _finish(run.doc, "CANCELED", message)
                run.doc.pop("_cancel_message", None)
                self._release(run)
        return True

    # --- execution -----------------------------------------------------------------------
    def output_path(self, task_run_id: int) -> Path:
        return self.store.runs_root / str(task_run_id) / "output.json"

    def _write_output(self, task_run_id: int, output: dict[str, Any]) -> None:
        path = self.output_path(task_run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(output), encoding="utf-8")
        tmp.replace(path)

    def _save(self, run: _ActiveRun) -> None:
        with self._lock:
            # a worker's last save can come after the run ended and was saved inactive
            if self._active.get(int(run.doc["run_id"])) is run:
                self.store.save_run(run.doc, active=True, token=run.token)
            self._changed.notify_all()

    def _coordinate(self, run: _ActiveRun) -> None:
        try:
            self._execute(run)
        except Exception as exc:
            log.exception("run %s failed inside the local workspace", run.doc["run_id"])
            with self._lock:
                for task in run.doc["tasks"]:
                    if task["state"]["life_cycle_state"] in ACTIVE_STATES:
                        _finish(task, "INTERNAL_ERROR", str(exc))
                _finish(run.doc, "INTERNAL_ERROR", f"Internal error: {exc}")
        finally:
            run.doc.pop("_cancel_message", None)
            self._release(run)

    def _execute(self, run: _ActiveRun) -> None:
        doc = run.doc
        started = self.clock()
        deadline = started + run.timeout_seconds if run.timeout_seconds else None
        for cluster_id in sorted({t.get("existing_cluster_id") for t in doc["tasks"]} - {None}):
            if not self.clusters.exists(cluster_id):
                message = f"Cluster {cluster_id} does not exist"
                with self._lock:
                    for task in doc["tasks"]:
                        _finish(task, "INTERNAL_ERROR", message)
                    _finish(doc, "INTERNAL_ERROR", message)
                return
            if not self.clusters.wait_running(cluster_id, run.cancel):
                break
        if any(t.get("existing_cluster_id") is None for t in doc["tasks"]):
            self.clusters.ensure_engine(None)  # job/serverless compute: the default engine
        with self._lock:
            doc["setup_duration"] = now_ms() - doc["start_time"]
            if not run.cancel.is_set():
                set_state(doc, "RUNNING", None, "In run")
        self._save(run)

        tasks = {t["task_key"]: t for t in doc["tasks"]}
        deps = {k: [d["task_key"] for d in t.get("depends_on", [])] for k, t in tasks.items()}
        done: dict[str, str] = {}
        running: dict[str, threading.Thread] = {}
        finished = threading.Condition(self._lock)

        def worker(key: str, spec: TaskSpec, cancel: threading.Event) -> None:
            outcome: TaskOutcome
            with self._workers:
                if cancel.is_set():
                    outcome = TaskOutcome("CANCELED", doc.get("_cancel_message", "Cancelled"))
                else:
                    with self._lock:
                        tasks[key]["start_time"] = now_ms()
                        set_state(tasks[key], "RUNNING", None, "In run")
                    self._save(run)
                    try:
                        outcome = self.executor(spec, cancel)
                    except Exception as exc:
                        log.exception("task %s of run %s crashed", key, doc["run_id"])
                        outcome = TaskOutcome("FAILED", f"Internal error: {exc}")
            with finished:
                task = tasks[key]
                if outcome.result_state == "CANCELED" and run.timed_out:
                    outcome = TaskOutcome("TIMEDOUT", "Run timed out", outcome.output)
                self._write_output(spec.task_run_id, outcome.output)
                _finish(task, outcome.result_state, outcome.state_message)
                done[key] = outcome.result_state
                running.pop(key, None)
                finished.notify_all()
                ended = _copy(task)
            self._save(run)
            if self.on_task_end is not None:
                self.on_task_end(ended)

        with finished:
            while len(done) < len(tasks):
                if deadline is not None and self.clock() >= deadline and not run.timed_out:
                    run.timed_out = True
                    run.cancel.set()
                    for event in run.task_cancels.values():
                        event.set()
                for key, task in tasks.items():
                    if key in done or key in running:
                        continue
                    if any(d not in done for d in deps[key]):
                        continue
                    upstream = [done[d] for d in deps[key]]
                    if run.cancel.is_set():
                        _finish(task, "CANCELED", "Not started: the run was cancelled")
                        done[key] = "CANCELED"
                        continue
                    blocked = _blocked_by(task.get("run_if", "ALL_SUCCESS"), upstream)
                    if blocked is not None:
                        _finish(task, blocked, "Upstream task(s) did not succeed")
                        task["state"]["life_cycle_state"] = "SKIPPED"
                        done[key] = blocked
                        continue
                    cancel = threading.Event()
                    run.task_cancels[key] = cancel
                    spec = TaskSpec(
                        run_id=int(doc["run_id"]),
                        task_run_id=int(task["run_id"]),
                        task_key=key,
                        task=task,
                        parameters=dict(task.get("_parameters", {})),
                        timeout_seconds=float(task["timeout_seconds"])
                        if task.get("timeout_seconds")
                        else None,
                    )
                    thread = threading.Thread(
                        target=worker,
                        args=(key, spec, cancel),
                        name=f"task-{task['run_id']}",
                        daemon=True,
                    )
                    running[key] = thread
                    thread.start()
                if len(done) < len(tasks):
                    finished.wait(0.05)
            set_state(doc, "TERMINATING", None, "Finishing the run")
        self._save(run)
        with self._lock:
            result = _run_result(done, cancelled=run.cancel.is_set(), timed_out=run.timed_out)
            message = {
                "CANCELED": doc.get("_cancel_message", "Run cancelled."),
                "TIMEDOUT": "Run timed out.",
                "FAILED": "Workload failed, see run output for details",
            }.get(result, "")
            _finish(doc, result, message)
            doc["execution_duration"] = max(
                0, doc["end_time"] - doc["start_time"] - doc.get("setup_duration", 0)
            )


def _blocked_by(run_if: str, upstream: list[str]) -> str | None:
    """The result a task gets without running, per its ``run_if`` condition; None to run it."""
    ok = [r == "SUCCESS" for r in upstream]
    if run_if == "ALL_DONE":
        return None
    if run_if == "AT_LEAST_ONE_SUCCESS":
        return None if any(ok) or not upstream else "UPSTREAM_FAILED"
    if run_if == "NONE_FAILED":
        return None if all(r in ("SUCCESS", "EXCLUDED") for r in upstream) else "UPSTREAM_FAILED"
    if run_if == "ALL_FAILED":
        return None if not any(ok) else "EXCLUDED"
    if run_if == "AT_LEAST_ONE_FAILED":
        return None if not all(ok) else "EXCLUDED"
    if all(ok):
        return None
    return "UPSTREAM_CANCELED" if "CANCELED" in upstream else "UPSTREAM_FAILED"


def _run_result(done: dict[str, str], *, cancelled: bool, timed_out: bool) -> str:
    if timed_out:
        return "TIMEDOUT"
    if cancelled:
        return "CANCELED"
    results = set(done.values())
    if results <= {"SUCCESS", "EXCLUDED"}:
        return "SUCCESS"
    if "FAILED" in results or "UPSTREAM_FAILED" in results or "INTERNAL_ERROR" in results:
        return "FAILED"
    if "TIMEDOUT" in results:
        return "TIMEDOUT"
    return "FAILED"


def _finish(doc: dict[str, Any], result: str, message: str) -> None:
    stamp = now_ms()
    doc.setdefault("start_time", stamp)
    if not doc.get("start_time"):
        doc["start_time"] = stamp
    doc["end_time"] = stamp
    doc["run_duration"] = stamp - doc["start_time"]
    if result == "INTERNAL_ERROR":
        set_state(doc, "INTERNAL_ERROR", "FAILED", message)
    else:
        set_state(doc, "TERMINATED", result, message)


def _copy(doc: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(doc)
