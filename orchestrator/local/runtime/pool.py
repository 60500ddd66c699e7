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
  ``spark`` loaded. A notebook that mentions ``spark`` takes one of those, or else a fork of
  the Spark zygote (:mod:`.forks`, started when a build says it runs Spark or when such a
  notebook first asks; the take waits while it starts); its first ``spark`` only connects
  (1.2-1.5 CPU-s less per Spark notebook). Other notebooks (a build's entry notebook) take the
  kernels without it.
* **Forked.** Python kernels are forked by a zygote (:mod:`.forks`, :mod:`.zygote`), a
  process that has imported ipykernel once: 0.2 CPU-s to a ready kernel instead of 0.7. A run
  that finds no idle kernel forks its own from it too (:meth:`KernelPool.spawner`), after
  waiting for it if it is starting. Should the zygote fail to start, kernels are processes of
  their own; should it die, the next start makes a new one, and the idle kernels that died
  with it are dropped.
* **One launcher per language.** Each language's kernels are started by a thread of its own,
  one at a time, so an R kernel (1.5 s) starts beside the Python ones rather than after
  them: a build's first runs need a Python kernel (the entry notebook) and, half a second
  later, one of the test notebook's language.
* **Owned.** Kernels (and the zygote) are started from the pool's threads
  (``PR_SET_PDEATHSIG`` is per thread, and the threads live as long as the pool), recorded in
  the workspace state until killed, and :meth:`KernelPool.close` kills the idle ones.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psutil

from orchestrator.local.runtime.forks import SPARK_MODULES, KernelForks, spark_installed
from orchestrator.local.runtime.kernel_process import Kernel, KernelStartError, Spawn
from orchestrator.local.runtime.launch import KERNEL_START_TIMEOUT, kernel_argv, kernel_base_env

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.local.state.notebook_format import Language

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
    f"for __orch_module in {SPARK_MODULES!r}:\n"
    "    try:\n"
    "        __import__('importlib').import_module(__orch_module)\n"
    "    except Exception:\n"
    "        pass\n"
    "del __orch_module"
)
#: how often a take waiting for a starting kernel calls its ``check``
_TAKE_CHECK_SECONDS = 0.05
#: how long a take waits for a preload in progress (it takes about a second)
_PRELOAD_WAIT_SECONDS = 30.0
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        #: the time the pool's pauses and back-offs count in (tests move it)
        self._clock = clock
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
        #: takes waiting for a kernel that is starting (each waits for one of its own)
        self._waiting: dict[Language, int] = dict.fromkeys(languages, 0)
        #: whether a run took (or asked for) a kernel yet
        self._taken = False
        self._failed_until: dict[Language, float] = {}
        self._closed = False
        #: notebook runs executing now (see :meth:`busy`)
        self._busy = 0
        #: when the last run ended (the pool waits :data:`REFILL_PAUSE_SECONDS` after it)
        self._idle_since = float("-inf")
        self._cpu = cpu or CpuWatch()
        self._spark = spark_installed()
        self._preload = _SPARK_PRELOAD if self._spark else None
        self._threads: list[threading.Thread] = []
        #: the zygotes the Python kernels are forked from (:mod:`.forks`)
        self.forks = KernelForks(root=root, state_dir=state_dir, check=self._check_open)

    def warm(self, languages: Collection[str] | None = None, *, spark: bool = False) -> None:
        """Start filling the pool (idempotent); the first call starts the pool's threads.

        ``languages``: the ones the coming runs need (an embedded workspace's build knows its
        notebooks'); the others start no kernel until a run asks for one. Speculative starts
        are not free on a busy machine: an unused R kernel costs 1.5 CPU-s. ``spark``: a
        coming run uses Spark, so the Spark zygote starts now (see :meth:`take`)."""
        with self._cond:
            if spark:
                self.forks.want_spark()
            if languages is not None:
                for language in self._languages:
                    if language not in languages and not self._taken:
                        self._target[language] = 0
            if not self._threads and not self._closed:
                for language in self._languages:
                    thread = threading.Thread(
                        target=self._fill,
                        args=(language,),
                        name=f"kernel-pool-{language.lower()}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)
            self._cond.notify_all()

    def take(
        self,
        language: Language,
        *,
        spark: bool = False,
        check: Callable[[], None] | None = None,
    ) -> PooledKernel | None:
        """A ready kernel of ``language``, or None (the caller starts its own). With
        ``spark`` (the notebook uses it), one whose Spark client is imported if there is one;
        without, one whose is not, so the preloaded ones stay for the notebooks that need them.
        A ``spark`` take that finds no such kernel gets None while the Spark zygote runs (it
        is started then if it was not, and waited for): the run forks its kernel from it
        (:meth:`spawner`), Spark's client imported, in a fraction of the import's second.

        When none is ready but one is starting that no other take waits for, the take waits
        for it rather than starting a second: it is ready sooner than a new one, and a
        machine busy with runs does not pay twice. ``check`` is called while waiting;
        whatever it raises (the run's cancel) propagates."""
        if spark and language == "PYTHON" and self._spark:
            decided, found = self._take_spark(check)
            if decided:
                return found
        dead: list[PooledKernel] = []
        with self._cond:
            if self._closed or language not in self._ready:
                return None
            self._taken = True
            waited = False
            while True:
                pooled, gone = self._pick(language, spark=spark)
                dead += gone
                if pooled is not None or self._closed:
                    break
                if not waited:
                    if self._starting[language] <= self._waiting[language]:
                        break
                    waited = True
                    self._waiting[language] += 1
                elif not self._starting[language]:
                    break  # it failed, or another take got it
                try:
                    if check is not None:
                        check()
                    self._cond.wait(_TAKE_CHECK_SECONDS)
                except BaseException:
                    self._waiting[language] -= 1
                    raise
            if waited:
                self._waiting[language] -= 1
            if pooled is None:
                self._target[language] = min(self._limit[language], self._target[language] + 1)
            self._cond.notify_all()
        for kernel in dead:
            _discard(kernel)
        if pooled is None and not self._threads:
            self.warm()
        if pooled is not None and not pooled.available.wait(_PRELOAD_WAIT_SECONDS):
            logger.warning(
                "kernel pool: kernel %s is still preloading; not used", pooled.kernel.pid
            )
            _discard(pooled)  # its preload then fails and ends
            return None
        return pooled

    def _take_spark(self, check: Callable[[], None] | None) -> tuple[bool, PooledKernel | None]:
        """A Spark notebook's take: an idle kernel whose Spark client is imported, or None
        when the Spark zygote (waited for while it starts) is to fork one; ``(False, None)``
        when neither is at hand (the zygote failed), and the take goes on as any other."""
        with self._cond:
            if self._closed or "PYTHON" not in self._ready:
                return True, None
            self._taken = True
            pooled, dead = self._pick("PYTHON", spark=True, others=False)
            self._cond.notify_all()
        for kernel in dead:
            _discard(kernel)
        if pooled is not None:
            return True, pooled
        return self.forks.spark_ready(check), None

    def _pick(
        self, language: Language, *, spark: bool, others: bool = True
    ) -> tuple[PooledKernel | None, list[PooledKernel]]:
        """Under the lock: the ready kernel a take gets (removed from the pool), and the idle
        ones found dead (they died idle, with their zygote say), removed too. One preloaded
        as ``spark`` asks comes first; with ``others``, any other when there is none."""
        ready = self._ready[language]
        dead = [k for k in ready if k.kernel.exited]
        for gone in dead:
            ready.remove(gone)
        available = [k for k in ready if k.available.is_set()]
        fallback = available[0] if available else (ready[0] if ready else None)
        pooled = next((k for k in available if k.preloaded == spark), fallback if others else None)
        if pooled is not None:
            ready.remove(pooled)
        return pooled, dead

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
                    self._idle_since = self._clock()
                self._cond.notify_all()

    def idle(self) -> dict[Language, int]:
        """Ready kernels per language."""
        with self._cond:
            return {lang: len(ready) for lang, ready in self._ready.items()}

    def starting(self) -> dict[Language, int]:
        """Kernels starting now, per language."""
        with self._cond:
            return dict(self._starting)

    def _short(self, language: Language) -> bool:
        """Whether ``language`` has fewer kernels ready or starting than its target (and
        did not fail to start lately)."""
        if self._failed_until.get(language, 0.0) > self._clock():
            return False
        have = len(self._ready[language]) + self._starting[language]
        return self._target[language] > have

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

    def _next_job(self, language: Language) -> Language | PooledKernel | None:
        """For ``language``'s launcher: the language, when a kernel of it is to start; else
        an idle Python kernel to preload; else None. While runs execute, only when the
        machine's CPUs are mostly idle."""
        if self._closed:
            return None
        if self._busy and not self._cpu.quiet():
            return None
        if self._clock() - self._idle_since < REFILL_PAUSE_SECONDS:
            return None  # the build that ran may be about to stop this workspace
        if self._short(language):
            return language
        return self._to_preload() if language == "PYTHON" else None

    def _fill(self, language: Language) -> None:
        while True:
            with self._cond:
                job = self._next_job(language)
                while job is None and not self._closed:
                    self._cond.wait(BUSY_CHECK_SECONDS if self._busy else REFILL_PAUSE_SECONDS)
                    job = self._next_job(language)
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
            try:
                pooled = self._start(job)
            except Exception:  # a bug, not a kernel that cannot start: keep the pool alive
                logger.exception("kernel pool: starting a %s kernel failed", job)
                with self._cond:
                    self._failed_until[job] = self._clock() + FAILURE_BACKOFF_SECONDS
                pooled = None
            with self._cond:
                self._starting[job] -= 1
                if pooled is not None and not self._closed:
                    self._ready[job].append(pooled)
                    pooled = None
                self._cond.notify_all()  # a take may be waiting for this kernel
            if pooled is not None:  # closed meanwhile
                _discard(pooled)

    def spawner(self, language: Language, *, spark: bool = False) -> Spawn | None:
        """How a run that found no idle kernel starts its own (:meth:`KernelForks.for_run`
        for Python; None, a process of its own, for the other languages)."""
        return self.forks.for_run(spark=spark) if language == "PYTHON" else None

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
                spawn=self.forks.for_pool() if language == "PYTHON" else None,
            )
        except (KernelStartError, OSError, _Closed) as exc:
            shutil.rmtree(kernel_dir, ignore_errors=True)
            if self.forks.gone():
                logger.info("kernel pool: the zygote ended; a new one forks the next kernel")
            elif not isinstance(exc, _Closed):
                logger.warning("kernel pool: cannot start a %s kernel: %s", language, exc)
                with self._cond:
                    self._failed_until[language] = self._clock() + FAILURE_BACKOFF_SECONDS
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
        self.forks.close()  # the zygotes, gone with the pool's threads anyway


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
