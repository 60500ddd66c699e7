"""Where a local workspace's Python kernels are forked from: :class:`KernelForks`.

The kernel pool (:mod:`.pool`) keeps idle kernels; this module keeps the two zygotes
(:mod:`.zygote`) they and the runs that find no idle kernel are forked from:

* **The zygote** has imported ipykernel: every Python kernel is forked from it (0.2 CPU-s to
  a ready kernel instead of 0.7). It is started by the pool's Python launcher thread on its
  first kernel (it dies with the thread that started it, ``PR_SET_PDEATHSIG``), replaced when
  it died, and not tried again for a while when it could not start (kernels are then
  processes of their own). A run that starts its own kernel while the zygote is starting
  waits for it: a process of its own would take as long and three times the CPU.
* **The Spark zygote** has imported Spark's client too (pyspark's Connect modules, pandas,
  pyarrow, grpc: 1.2-1.5 CPU-s in every Spark notebook otherwise). The kernels of notebooks
  that use ``spark`` are forked from it: Spark's client is loaded, no name is bound, and the
  notebook's first ``spark`` only connects, as on Databricks, where ``spark`` is always
  loaded. It is a branch of the zygote (:meth:`.Zygote.branch`: forked from it, it skips the
  interpreter's start and ipykernel's imports, 0.5 CPU-s), or a zygote of its own when none
  has started. It starts, in a thread of its own that lives until :meth:`KernelForks.close`,
  when a build says its notebooks use Spark or when a Spark notebook first asks.

Both run on the default runtime profile's interpreter (:func:`.launch.kernel_python`), as the
pool's kernels do; a run on a cluster of another profile starts its kernel as a process of
its own.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import threading
import time
import uuid
from typing import TYPE_CHECKING, Literal

from orchestrator.local.runtime.kernel_process import KernelProcess, Spawn, popen_kernel
from orchestrator.local.runtime.launch import kernel_base_env
from orchestrator.local.runtime.zygote import Zygote, ZygoteBranch, ZygoteError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

__all__ = ["SPARK_MODULES", "KernelForks", "spark_installed"]

logger = logging.getLogger(__name__)

#: Spark's client: what the Spark zygote imports ahead (as an idle pooled kernel may)
SPARK_MODULES = (
    "pyspark.sql.connect.session",
    "pyspark.sql.connect.dataframe",
    "pyspark.sql.connect.readwriter",
)
#: how long a run's kernel start waits for a zygote that is starting (it takes about a second)
ZYGOTE_WAIT_SECONDS = 20.0
#: seconds before a zygote that could not start is tried again
FAILURE_BACKOFF_SECONDS = 60.0
#: how often a wait for a starting zygote looks at its ``check``
_CHECK_SECONDS = 0.05
#: how long the Spark zygote waits for the zygote's start to begin (the pool's Python launcher
#: begins it when it starts), before it starts as a zygote of its own
_FIRST_START_GRACE_SECONDS = 2.0


def spark_installed() -> bool:
    """Whether Spark's client (``pyspark``) can be imported here."""
    return importlib.util.find_spec("pyspark") is not None


class KernelForks:
    """The pool's zygote and Spark zygote; see the module docstring. ``check`` raises once the
    pool is closed (it ends a zygote's start)."""

    def __init__(self, *, root: Path, state_dir: Path, check: Callable[[], None]) -> None:
        self._root = root
        self._state_dir = state_dir
        self._check = check
        self._spark = spark_installed()
        self._cond = threading.Condition()
        self._closed = False
        self._zygote: Zygote | None = None
        self._failed_until = 0.0
        #: while a launcher thread starts the zygote (runs that start their own wait for it)
        self._starting = False
        #: whether a start of the zygote was begun (the Spark zygote branches from it)
        self._tried = False
        self._spark_zygote: Zygote | ZygoteBranch | None = None
        self._spark_state: Literal["off", "starting", "ready", "failed"] = "off"
        self._spark_thread: threading.Thread | None = None

    @property
    def starting(self) -> bool:
        """Whether the zygote is starting now."""
        with self._cond:
            return self._starting

    @property
    def zygote(self) -> Zygote | None:
        with self._cond:
            return self._zygote

    @property
    def spark_zygote(self) -> Zygote | ZygoteBranch | None:
        with self._cond:
            return self._spark_zygote

    def for_pool(self) -> Spawn | None:
        """For a kernel the calling (launcher) thread starts: the zygote's fork, the zygote
        started first (or replaced, when it died), or None: a process of its own."""
        if self._zygote is not None and not self._zygote.alive:
            self._close_zygote()
        if self._zygote is None and time.monotonic() >= self._failed_until:
            with self._cond:
                self._starting = True
                self._tried = True
            zygote: Zygote | None = None
            try:
                zygote = self._new_zygote("zygote")
            except (ZygoteError, OSError) as exc:
                logger.warning("kernel pool: %s; starting kernels without it", exc)
                self._failed_until = time.monotonic() + FAILURE_BACKOFF_SECONDS
            finally:
                with self._cond:
                    self._zygote = zygote
                    self._starting = False
                    self._cond.notify_all()
        return None if self._zygote is None else self._zygote.spawn

    def gone(self) -> bool:
        """Whether the zygote died (a kernel it was forking failed with it)."""
        return self._zygote is not None and not self._zygote.alive

    def for_run(self, *, spark: bool = False) -> Spawn | None:
        """For a run that found no idle kernel: a fork of the zygote (of the Spark zygote for
        a notebook that uses ``spark``, while it runs), one once the zygote has started
        when it is starting, else None (a process of its own). The kernel lives as long as
        its zygote, which lives as long as the pool; its run kills it."""
        with self._cond:
            zygote: Zygote | ZygoteBranch | None = self._zygote
            if spark and self._spark_zygote is not None and self._spark_zygote.alive:
                zygote = self._spark_zygote
            if zygote is not None and zygote.alive:
                return zygote.spawn
            return self._spawn_once_started if self._starting else None

    def _spawn_once_started(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
    ) -> KernelProcess:
        deadline = time.monotonic() + ZYGOTE_WAIT_SECONDS
        with self._cond:
            while self._starting and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, _CHECK_SECONDS))
            zygote = self._zygote
        if zygote is None or not zygote.alive:
            return popen_kernel(argv, cwd=cwd, env=env, log=log)
        return zygote.spawn(argv, cwd=cwd, env=env, log=log)

    def want_spark(self) -> None:
        """Start the Spark zygote, once, in a thread of its own (returns at once)."""
        with self._cond:
            if not self._spark or self._spark_state != "off" or self._closed:
                return
            self._spark_state = "starting"
            self._spark_thread = threading.Thread(
                target=self._run_spark_zygote, name="kernel-pool-spark", daemon=True
            )
            self._spark_thread.start()

    def spark_ready(self, check: Callable[[], None] | None) -> bool:
        """Start the Spark zygote if it is not, wait while it starts (``check`` is called
        meanwhile; what it raises propagates), and say whether it runs."""
        self.want_spark()
        with self._cond:
            while self._spark_state == "starting" and not self._closed:
                if check is not None:
                    check()
                self._cond.wait(_CHECK_SECONDS)
            zygote = self._spark_zygote
            return zygote is not None and zygote.alive and not self._closed

    def _run_spark_zygote(self) -> None:
        """The Spark zygote's thread: it lives until the forks close (a zygote of its own dies
        with the thread that started it)."""
        zygote: Zygote | ZygoteBranch | None = None
        try:
            zygote = self._new_spark_zygote()
        except (ZygoteError, OSError) as exc:
            logger.warning("kernel pool: %s; Spark notebooks import Spark's client themselves", exc)
        except Exception:
            logger.debug("kernel pool: the Spark zygote's start stopped", exc_info=True)
        with self._cond:
            self._spark_zygote = zygote
            self._spark_state = "ready" if zygote is not None else "failed"
            self._cond.notify_all()
            while not self._closed:
                self._cond.wait()
            self._spark_zygote = None
        if zygote is not None:
            zygote.close()

    def _new_spark_zygote(self) -> Zygote | ZygoteBranch:
        """A branch of the zygote (forked from it, it skips the interpreter's start and
        ipykernel's imports: 0.5 CPU-s), or, with no zygote, a zygote of its own."""
        now = time.monotonic()
        deadline, grace = now + ZYGOTE_WAIT_SECONDS, now + _FIRST_START_GRACE_SECONDS
        with self._cond:  # a build's hint comes with the pool's start: the zygote is starting
            while self._zygote is None and not self._closed:
                if time.monotonic() >= (deadline if self._starting else grace):
                    break  # none is starting (it failed, or the pool has not asked for one)
                if self._tried and not self._starting:
                    break  # it could not start
                self._cond.wait(_CHECK_SECONDS)
            base = self._zygote
        self._check()
        if base is None or not base.alive:
            return self._new_zygote("zygote-spark", SPARK_MODULES)
        folder = self._root / f"zygote-spark-{uuid.uuid4().hex[:12]}"
        return base.branch(
            SPARK_MODULES,
            env=kernel_base_env(self._state_dir, folder),
            cwd=folder,
            log_file=folder / "zygote.log",
            check=self._check,
            owned_dir=folder,
        )

    def _new_zygote(self, name: str, preload: Sequence[str] = ()) -> Zygote:
        """A zygote started from the calling thread (it dies with it), in a folder of its own
        under the root, removed with it (or at once, if it cannot start)."""
        folder = self._root / f"{name}-{uuid.uuid4().hex[:12]}"
        try:
            return Zygote.start(
                env=kernel_base_env(self._state_dir, folder),
                cwd=folder,
                log_file=folder / "zygote.log",
                state_dir=self._state_dir,
                check=self._check,
                owned_dir=folder,
                preload=preload,
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _close_zygote(self) -> None:
        with self._cond:
            zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.close()  # its folder goes with it

    def close(self) -> None:
        """Stop both zygotes (once the pool's threads are done: the zygote dies with the
        launcher thread anyway, and the kernels each forked with it)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._spark_thread
        if thread is not None:
            thread.join(10)
        self._close_zygote()
