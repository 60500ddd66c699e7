"""Fakes shared by the suite: a clock, and a task executor for the local workspace.

:class:`FakeExecutor` stands in for the Jupyter runtime only where a test is about the run life
cycle (queueing, DAGs, cancel, timeouts, idempotency) and a real kernel would add seconds and
nothing else; the runtime and the end-to-end flows are tested with real kernels elsewhere. A
task's ``base_parameters`` say what it does: ``sleep`` seconds, ``result`` to end with, ``exit``
value.
"""

from __future__ import annotations

import threading
import time

from orchestrator.local.jobs.task_execution import TaskOutcome, TaskSpec

__all__ = ["FakeClock", "FakeExecutor"]


class FakeClock:
    """An :class:`orchestrator.clock.Clock` whose time moves only when the code under test
    sleeps; every sleep is recorded. Thread-safe, for code that sleeps from several threads."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class FakeExecutor:
    def __init__(self) -> None:
        self.calls: list[TaskSpec] = []
        self.lock = threading.Lock()
        self.running = 0
        self.max_running = 0

    def __call__(self, spec: TaskSpec, cancel: threading.Event) -> TaskOutcome:
        with self.lock:
            self.calls.append(spec)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            deadline = time.monotonic() + float(spec.parameters.get("sleep", "0"))
            limit = (
                time.monotonic() + spec.timeout_seconds if spec.timeout_seconds else float("inf")
            )
            while time.monotonic() < deadline:
                if cancel.wait(0.01):
                    return TaskOutcome("CANCELED", "Run cancelled")
                if time.monotonic() > limit:
                    return TaskOutcome("TIMEDOUT", "Timed out", {"error": "Notebook run timed out"})
            result = spec.parameters.get("result", "SUCCESS")
            output: dict[str, object] = {
                "notebook_output": {"result": spec.parameters.get("exit", "")}
            }
            if result == "FAILED":
                output["error"] = "Exception: boom"
            return TaskOutcome(result, "" if result == "SUCCESS" else "boom", output)
        finally:
            with self.lock:
                self.running -= 1
