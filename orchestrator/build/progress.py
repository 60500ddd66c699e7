"""What a build shows while it works: one line per step; while a run is going, its state on
one line rewritten in place on a terminal, or a line each time it changes in a CI log (each
task's state for a few tasks, counts and the tasks that just failed for many)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from orchestrator.adapters.databricks import RunView

__all__ = ["Progress"]

#: a run of at most this many tasks shows each task's state; a bigger one its counts
_NAMED_TASKS = 8
_NOT_RUN = frozenset({"UPSTREAM_FAILED", "UPSTREAM_CANCELED", "EXCLUDED", "SKIPPED"})
_FAILED = frozenset({"FAILED", "TIMEDOUT", "CANCELED", "INTERNAL_ERROR"})


class Progress:
    def __init__(
        self,
        out: TextIO,
        *,
        live: bool,
    ) -> None:
        self.out = out
        self.live = live
        self._last_line = ""
        self._drawn = False
        self._failed: set[str] = set()
        self._tenth = 0

    def step(self, message: str) -> None:
        self._clear()
        self.out.write(f"==> {message}\n")
        self.out.flush()

    def info(self, message: str) -> None:
        self._clear()
        self.out.write(f"    {message}\n")
        self.out.flush()

    def count(self, what: str, done: int, total: int) -> None:
        if self.live:
            self.out.write(f"\r    {what}: {done}/{total}")
            self._drawn = True
            self.out.flush()

    def run(self, run: RunView) -> None:
        """The run's state: each task's, for a few tasks, else the counts and the tasks that
        just failed. On a terminal one line, rewritten in place; in a log a line only when
        something changed, so a 500-task build stays readable."""
        line = self._line(run)
        if self.live:
            self.out.write("\r\x1b[K    " + line)
            self._drawn = True
            self.out.flush()
        elif line != self._last_line and self._worth_a_line(run, line):
            self.out.write(f"    {line}\n")
            self.out.flush()
            self._last_line = line

    def _worth_a_line(self, run: RunView, line: str) -> bool:
        """In a log, a run of many tasks gets a line when a task failed, when it starts, and
        at each tenth of its tasks done: about 15 lines, however many tasks it has."""
        if len(run.tasks) <= _NAMED_TASKS or "failed:" in line:
            return True
        done = sum(1 for t in run.tasks if t.end.over)
        tenth = done * 10 // len(run.tasks)
        if not self._last_line or tenth > self._tenth:
            self._tenth = tenth
            return True
        return False

    def _line(self, run: RunView) -> str:
        if len(run.tasks) <= _NAMED_TASKS:
            return ", ".join(f"{t.task_key}: {t.end.shown}" for t in run.tasks) or "waiting"
        counts = {"pending": 0, "running": 0, "passed": 0, "failed": 0, "skipped": 0}
        failed: list[str] = []
        for task in run.tasks:
            shown = task.end.shown
            if shown == "SUCCESS":
                counts["passed"] += 1
            elif shown in _NOT_RUN:
                counts["skipped"] += 1
            elif task.end.over or shown in _FAILED:
                counts["failed"] += 1
                failed.append(task.task_key)
            elif shown in ("RUNNING", "TERMINATING"):
                counts["running"] += 1
            else:
                counts["pending"] += 1
        new = [key for key in failed if key not in self._failed]
        self._failed.update(new)
        line = ", ".join(f"{n} {what}" for what, n in counts.items())
        if new:
            more = f" and {len(new) - 10} more" if len(new) > 10 else ""
            line += f"; failed: {', '.join(new[:10])}{more}"
        return line

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False
