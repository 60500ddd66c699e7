"""The fast tier, kept honest: which processes make a test slow, and a watch for them.

A test is *slow* when it starts a real Jupyter kernel (or the fork server kernels come from),
an R kernel, MLflow's tracking server, Azurite or a browser (a Spark engine, which any cluster
of a workspace may start in 0.1-0.3 s, is not one of them); every other test is *fast*
(``pytest -m fast``, the tier a developer runs in their loop). Tests are marked ``slow``
explicitly (a module's ``pytestmark`` or a decorator) or by the fixtures they use
(conftest.py). When the fast tier runs, :class:`ProcessWatch` samples this process's
descendants during each test and fails a test marked fast that started one of those
processes, naming it: a forgotten mark cannot make the fast tier slow unnoticed.
``ORCH_TEST_TIER_AUDIT=<file>`` records, for every test, what it started (how the marks were
found).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import psutil

__all__ = ["AUDIT_VARIABLE", "ProcessWatch", "heavy_process"]

AUDIT_VARIABLE = "ORCH_TEST_TIER_AUDIT"

#: command-line fragments of the processes that make a test slow
_HEAVY = (
    ("ipykernel_launcher", "a Python kernel"),
    ("zygote_main.py", "the kernel fork server"),
    ("IRkernel", "an R kernel"),
    ("azurite", "Azurite"),
    ("mlflow server", "the MLflow tracking server"),
    ("chrom", "a browser"),
)


def heavy_process(cmdline: list[str]) -> str | None:
    """What a process is, when it is one that makes a test slow."""
    text = " ".join(cmdline)
    for fragment, what in _HEAVY:
        if fragment in text:
            return what
    return None


class ProcessWatch:
    """Samples this process's descendants every 50 ms and keeps the heavy ones seen since the
    last :meth:`take`."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._seen: set[str] = set()
        self._known: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tier-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def sample(self) -> None:
        try:
            children = self._me.children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            if child.pid in self._known:
                continue
            try:
                what = heavy_process(child.cmdline())
            except psutil.Error:
                continue
            with self._lock:
                self._known.add(child.pid)
                if what is not None:
                    self._seen.add(what)

    def take(self) -> set[str]:
        """What was seen since the last call (sampled once more first)."""
        self.sample()
        with self._lock:
            seen, self._seen = self._seen, set()
        return seen

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)


def audit(nodeid: str, started: set[str]) -> None:
    """Append one line to the audit file, when ``ORCH_TEST_TIER_AUDIT`` names one."""
    target = os.environ.get(AUDIT_VARIABLE)
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(json.dumps({"test": nodeid, "started": sorted(started)}) + "\n")
