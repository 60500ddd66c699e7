"""What a build shows while it works: one line per step in CI logs, live task states on a
terminal (rewritten in place), and a periodic status line in CI while a run is going."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from orchestrator.adapters.databricks import RunView

__all__ = ["Progress"]


class Progress:
    def __init__(
        self,
        out: TextIO,
        *,
        live: bool,
        ci_interval: float = 30.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.live = live
        self.ci_interval = ci_interval
        self.now = now
        self._last_line = ""
        self._last_print = -1e9
        self._drawn = False

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
        states = [f"{task.task_key}: {task.end.shown}" for task in run.tasks]
        line = ", ".join(states) or "waiting"
        if self.live:
            self.out.write("\r\x1b[K    " + line)
            self._drawn = True
            self.out.flush()
        elif line != self._last_line or self.now() - self._last_print >= self.ci_interval:
            self.out.write(f"    {line}\n")
            self.out.flush()
            self._last_print = self.now()
        self._last_line = line

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False
