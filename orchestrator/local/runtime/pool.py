"""Warm kernels: :class:`KernelPool` keeps started kernels ready, per language.

Starting a kernel is most of a small notebook run (0.8 s for ipykernel, 1.5 s for IRkernel on
a 2-core machine). A pool starts them ahead, in background threads, so a run takes a kernel
that already answers. Databricks' instance pools are the model: idle capacity kept warm,
handed out once, never returned.

* **Never reused.** :meth:`KernelPool.take` hands a kernel out for good; its run kills it.
  A pooled kernel ran nothing but the handshake: no notebook code, no run's environment.
* **Fresh to the notebook.** A pooled kernel is started with :func:`.launch.kernel_base_env`
  and its own ``HOME``/``TMPDIR`` folder (deleted when it is killed); the executor hands it the
  run's environment and working directory (:func:`.launch.adopt_code`) before the shims load,
  so widgets, ``sys.path``, cwd, environment and ``dbutils`` are what a fresh kernel has.
* **Sized by demand.** Each language starts with a target of idle kernels (Python: two per
  worker, as a build's task runs its entry notebook and a child; R: one); a ``take`` that
  finds none raises the target by one, up to two per worker for Python and one for R
  (``size`` is the workspace's ``max_workers``), and every ``take`` is replaced. A language
  whose kernel cannot start (no R, say) is not retried for a while; runs then start their own
  kernel and report the error themselves.
* **Out of the runs' way.** While notebook runs execute (:meth:`KernelPool.busy`), the pool
  starts and preloads kernels only when the CPUs are mostly idle, and it waits
  :data:`REFILL_PAUSE_SECONDS` after the last run: on a busy machine every start takes CPU
  from the runs, and a kernel the current build does not take is lost work. Measured on the
  sample's warm build (2 cores): 12-15 CPU-s and 8.3-10.4 s with refills during the run,
  8.3-8.9 CPU-s and 6.9-7.4 s without.
* **Spark ahead.** Once the pool is full and ``pyspark`` is installed, up to one idle Python
  kernel per worker imports Spark's client (binding no name), as every Databricks notebook has
  ``spark`` loaded; a notebook that mentions ``spark`` takes one of those and its first
  ``spark`` only connects (about 1 s less per Spark notebook); other notebooks (a build's entry
  notebook) take the others.
* **Owned.** Kernels are started from the pool's thread, one at a time (``PR_SET_PDEATHSIG``
  is per thread, and the thread lives as long as the pool), recorded in the workspace state
  until killed, and :meth:`KernelPool.close` kills the idle ones.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psutil

from orchestrator.local.runtime.kernel import Kernel, KernelStartError
from orchestrator.local.runtime.launch import KERNEL_START_TIMEOUT, kernel_argv, kernel_base_env

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.local.notebooks import Language

__all__ = ["KernelPool", "PooledKernel"]

logger = logging.getLogger(__name__)

#: idle kernels kept per language before any demand is seen (``None``: the pool's size; a
#: build's tasks start in a Python entry notebook, so Python is in demand from the first run)
INITIAL_TARGET: dict[Language, int | None] = {"PYTHON": None, "R": 1}
#: idle kernels per worker at most (``size`` is the workspace's ``max_workers``)
LIMIT_PER_WORKER: dict[Language, int] = {"PYTHON": 2, "R": 1}
#: run in idle Python kernels once the pool is full: Spark's client imported ahead (names bound
#: nowhere), as on Databricks, where ``spark`` is always loaded; a notebook's first ``spark``
#: then only connects to its cluster's engine
_SPARK_PRELOAD = (
    "for __orch_module in ('pyspark.sql.connect.session', 'pyspark.sql.connect.dataframe',\n"
    "                      'pyspark.sql.connect.readwriter'):\n"
    "    try:\n"
    "        __import__('importlib').import_module(__orch_module)\n"
    "    except Exception:\n"
    "        pass\n"
    "del __orch_module"
)
#: how long a take waits for a preload in progress (it takes about a second)
_PRELOAD_WAIT_SECONDS = 30.0
#: kernels started at once: one, so refills take at most one core from the runs that run
#: meanwhile (each start keeps a core busy for about a second)
LAUNCHERS = 1
#: while runs execute, how often the pool looks whether the CPUs are quiet enough to fill
BUSY_CHECK_SECONDS = 1.0
#: the idle share of the CPUs at which the pool fills while runs execute: a kernel start or a
#: preload keeps a core busy for about a second, which CPU-bound runs would lose
QUIET_SHARE = 0.5
#: seconds the pool waits after the last run ended before it fills again: a build on the
#: embedded workspace collects, cleans and stops it then, and a kernel started meanwhile is
#: killed unused
REFILL_PAUSE_SECONDS = 2.0
#: seconds before a language whose kernel failed to start is tried again
FAILURE_BACKOFF_SECONDS = 60.0


class PooledKernel:
    """A kernel from the pool and the folder it owns (its ``HOME``, ``TMPDIR``, logs)."""

    def __init__(self, kernel: Kernel, kernel_dir: Path) -> None:
        self.kernel = kernel
        self.kernel_dir = kernel_dir
        self.preloaded = False
        #: clear while the pool's thread uses the kernel (preloading); a taker waits for it
        self.available = threading.Event()
        self.available.set()


class KernelPool:
    """Started kernels kept ready per language; see the module docstring."""

    def __init__(
        self,
        *,
        root: Path,
        state_dir: Path,
        size: int,
        languages: tuple[Language, ...] = ("PYTHON", "R"),
        cpu: CpuWatch | None = None,
    ) -> None:
        self._root = root
        self._state_dir = state_dir
        self._languages = languages
        #: most idle kernels per language: a task's notebook may run a child notebook
        #: (a build's entry notebook always does, in Python), so Python keeps two per worker
        self._workers = max(1, size)
        self._limit = {lang: self._workers * LIMIT_PER_WORKER.get(lang, 1) for lang in languages}
        self._cond = threading.Condition()
        self._ready: dict[Language, deque[PooledKernel]] = {lang: deque() for lang in languages}
        self._target = {
            lang: min(self._limit[lang], INITIAL_TARGET.get(lang, 1) or self._limit[lang])
            for lang in languages
        }
        self._starting: dict[Language, int] = dict.fromkeys(languages, 0)
        self._failed_until: dict[Language, float] = {}
        self._closed = False
        #: notebook runs executing now (see :meth:`busy`)
        self._busy = 0
        #: when the last run ended (the pool waits :data:`REFILL_PAUSE_SECONDS` after it)
        self._idle_since = float("-inf")
        self._cpu = cpu or CpuWatch()
        self._preload = _SPARK_PRELOAD if importlib.util.find_spec("pyspark") else None
        self._threads: list[threading.Thread] = []

    def warm(self) -> None:
        """Start filling the pool (idempotent); the first call starts the pool's threads."""
        with self._cond:
            if not self._threads and not self._closed:
                for index in range(LAUNCHERS):
                    thread = threading.Thread(
                        target=self._fill, name=f"kernel-pool-{index}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
            self._cond.notify_all()

    def take(self, language: Language, *, spark: bool = False) -> PooledKernel | None:
        """A ready kernel of ``language``, or None (the caller starts its own). With
        ``spark`` (the notebook uses it), one whose Spark client is imported if there is one;
        without, one whose is not, so the preloaded ones stay for the notebooks that need them."""
        with self._cond:
            if self._closed or language not in self._ready:
                return None
            ready = self._ready[language]
            available = [k for k in ready if k.available.is_set()]
            pooled = next(
                (k for k in available if k.preloaded == spark),
                available[0] if available else (ready[0] if ready else None),
            )
            if pooled is not None:
                ready.remove(pooled)
            else:
                self._target[language] = min(self._limit[language], self._target[language] + 1)
            self._cond.notify_all()
        if pooled is None and not self._threads:
            self.warm()
        if pooled is not None and not pooled.available.wait(_PRELOAD_WAIT_SECONDS):
            logger.warning(
                "kernel pool: kernel %s is still preloading; not used", pooled.kernel.pid
            )
            _discard(pooled)  # its preload then fails and ends
            return None
        return pooled

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Mark a notebook run as executing. While any runs, the pool starts and preloads
        kernels only when the CPUs are mostly idle (:class:`CpuWatch`): every start or
        preload keeps a core busy for about a second, which CPU-bound runs need more, and a
        kernel the current build does not take would be work lost to it. It fills up
        :data:`REFILL_PAUSE_SECONDS` after the runs end; a take that finds no kernel starts its
        own meanwhile."""
        with self._cond:
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                if not self._busy:
                    self._idle_since = time.monotonic()
                self._cond.notify_all()

    def idle(self) -> dict[Language, int]:
        """Ready kernels per language."""
        with self._cond:
            return {lang: len(ready) for lang, ready in self._ready.items()}

    def _next_language(self) -> Language | None:
        """The language most short of its target (Python first on a tie), or None; while
        runs execute, the target is at most one."""
        now = time.monotonic()
        best: tuple[int, int] | None = None
        chosen: Language | None = None
        for order, lang in enumerate(self._languages):
            if self._failed_until.get(lang, 0.0) > now:
                continue
            missing = self._target[lang] - len(self._ready[lang]) - self._starting[lang]
            if missing > 0 and (best is None or (-missing, order) < best):
                best, chosen = (-missing, order), lang
        return chosen

    def _to_preload(self) -> PooledKernel | None:
        """An idle Python kernel whose Spark client is not imported yet, when the pool is full
        and Spark is installed and fewer than one per worker have it; marked unavailable
        until its import is done (it adds ~100 MB to the kernel)."""
        if self._preload is None:
            return None
        ready = self._ready.get("PYTHON", ())
        if sum(pooled.preloaded for pooled in ready) >= self._workers:
            return None
        for pooled in ready:
            if not pooled.preloaded:
                pooled.preloaded = True
                pooled.available.clear()
                return pooled
        return None

    def _preload_spark(self, pooled: PooledKernel) -> None:
        assert self._preload is not None
        try:
            pooled.kernel.execute(
                self._preload, on_message=lambda _msg: None, check=self._check_open, silent=True
            )
        except Exception:  # noqa: BLE001 - closed (the kernel killed under us) or it died
            logger.debug("kernel pool: preloading in kernel %s stopped", pooled.kernel.pid)
        finally:
            pooled.available.set()

    def _next_job(self) -> Language | PooledKernel | None:
        """A language to start a kernel of, else an idle kernel to preload, else None.
        While runs execute, only when the machine's CPUs are mostly idle."""
        if self._closed:
            return None
        if self._busy and not self._cpu.quiet():
            return None
        if time.monotonic() - self._idle_since < REFILL_PAUSE_SECONDS:
            return None  # the build that ran may be about to stop this workspace
        return self._next_language() or self._to_preload()

    def _fill(self) -> None:
        while True:
            with self._cond:
                job = self._next_job()
                while job is None and not self._closed:
                    self._cond.wait(BUSY_CHECK_SECONDS if self._busy else REFILL_PAUSE_SECONDS)
                    job = self._next_job()
                if job is None:  # closed
                    return
                if isinstance(job, PooledKernel):
                    idle: PooledKernel | None = job
                else:
                    idle = None
                    self._starting[job] += 1
            if idle is not None:
                self._preload_spark(idle)
                continue
            assert not isinstance(job, PooledKernel)
            pooled = self._start(job)
            with self._cond:
                self._starting[job] -= 1
                if pooled is not None and not self._closed:
                    self._ready[job].append(pooled)
                    pooled = None
            if pooled is not None:  # closed meanwhile
                _discard(pooled)

    def _start(self, language: Language) -> PooledKernel | None:
        kernel_dir = self._root / f"{language.lower()}-{uuid.uuid4().hex[:12]}"
        try:
            env = kernel_base_env(self._state_dir, kernel_dir)
            kernel = Kernel.start(
                argv=kernel_argv(language),
                cwd=kernel_dir,
                env=env,
                work_dir=kernel_dir,
                check=self._check_open,
                start_timeout=KERNEL_START_TIMEOUT,
                state_dir=self._state_dir,
                owned_dir=kernel_dir,
            )
        except (KernelStartError, OSError, _Closed) as exc:
            shutil.rmtree(kernel_dir, ignore_errors=True)
            if not isinstance(exc, _Closed):
                logger.warning("kernel pool: cannot start a %s kernel: %s", language, exc)
                with self._cond:
                    self._failed_until[language] = time.monotonic() + FAILURE_BACKOFF_SECONDS
            return None
        return PooledKernel(kernel, kernel_dir)

    def _check_open(self) -> None:
        if self._closed:
            raise _Closed

    def close(self) -> None:
        """Stop filling and kill the idle kernels (a kernel taken is its run's to kill)."""
        with self._cond:
            self._closed = True
            idle = [pooled for ready in self._ready.values() for pooled in ready]
            for ready in self._ready.values():
                ready.clear()
            self._cond.notify_all()
        killers = [threading.Thread(target=_discard, args=(pooled,)) for pooled in idle]
        for killer in killers:  # at once: each kill waits for its process tree to be gone
            killer.start()
        for killer in killers:
            killer.join()
        for thread in self._threads:
            thread.join(10)


class CpuWatch:
    """Whether this machine's CPUs were mostly idle lately, from ``/proc/stat`` deltas.

    A verdict covers at least :data:`BUSY_CHECK_SECONDS`; asked sooner, the last one stands.
    A look after a long pause (more than twice that) starts a new window instead of judging
    the pause: not quiet until a window of now has passed.
    """

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None
        self._quiet = False

    def quiet(self) -> bool:
        times = psutil.cpu_times()
        # guest time is counted in user time already
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        elapsed = 0.0
        if self._last is not None:
            elapsed = (total - self._last[0]) / (psutil.cpu_count() or 1)
        if self._last is None or elapsed > 2 * BUSY_CHECK_SECONDS:
            self._last, self._quiet = (total, idle), False
            return False
        if elapsed >= BUSY_CHECK_SECONDS:
            self._quiet = (idle - self._last[1]) >= QUIET_SHARE * (total - self._last[0])
            self._last = (total, idle)
        return self._quiet


class _Closed(Exception):
    """The pool closed while a kernel was starting."""


def _discard(pooled: PooledKernel) -> None:
    pooled.kernel.kill()
    shutil.rmtree(pooled.kernel_dir, ignore_errors=True)
