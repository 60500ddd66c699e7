"""The warm kernel pool with real kernels: a pooled kernel looks fresh to the notebook, no state
crosses from one run to the next, and cancel kills exactly the run's kernel."""

from __future__ import annotations

import collections
import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orchestrator.local.runtime.execution import NotebookResult
from orchestrator.local.runtime.executor import execute_notebook
from orchestrator.local.runtime.pool import (
    REFILL_PAUSE_SECONDS,
    CpuWatch,
    KernelPool,
    PooledKernel,
)
from orchestrator.local.state.notebook_format import Language
from tests.fakes import FakeClock
from tests.local.runtime_helpers import (
    Workspace,
    assert_all_gone,
    kernel_pids,
    read_pids,
    source,
)
from tests.tools import require_r
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
HAS_R = shutil.which("R") is not None
LANGUAGES: tuple[Language, ...] = ("PYTHON", "R") if HAS_R else ("PYTHON",)

PY_FINGERPRINT = """import json, os, sys, tempfile
home = os.environ["HOME"]
kernel_dir = os.path.dirname(home)
names = sorted(k for k in os.environ if k.startswith(("ORCH_", "PIP_")) or k in (
    "HOME", "TMPDIR", "PYTHONPATH", "IPYTHONDIR", "MPLBACKEND", "LC_ALL"))
fingerprint = {
    "cwd": os.getcwd(),
    "sys.path": sys.path,
    "env": {k: os.environ[k] for k in names},
    "tempdir": tempfile.gettempdir(),
    "home": os.path.expanduser("~"),
    "widgets": dbutils.widgets.getAll(),
    "notebook": dbutils.notebook.entry_point.getDbutils().notebook().getContext()
        .notebookPath().get(),
    "user variables": sorted(k for k in globals() if not k.startswith("_") and k not in (
        "json", "os", "sys", "tempfile", "home", "kernel_dir", "names", "scratch", "text",
        "In", "Out", "get_ipython", "exit", "quit", "open", "dbutils", "display", "displayHTML",
        "spark", "sc", "table", "sql", "udf", "getArgument")),
}
scratch = os.path.dirname(os.environ["ORCH_PIP_TARGET"])
text = json.dumps(fingerprint).replace(kernel_dir, "<kernel>").replace(scratch, "<scratch>")
dbutils.notebook.exit(text)
"""
R_FINGERPRINT = """home <- Sys.getenv("HOME")
kernel_dir <- dirname(home)
names <- sort(grep("^(ORCH_|PIP_)|^(HOME|TMPDIR|LC_ALL|R_LIBS_USER)$", names(Sys.getenv()),
                   value = TRUE))
fingerprint <- list(
  cwd = getwd(),
  env = as.list(Sys.getenv(names)),
  tempdir = dirname(tempdir()),
  home = path.expand("~"),
  libs = .libPaths(),
  widget = dbutils.widgets.get("x")
)
text <- as.character(jsonlite::toJSON(fingerprint, auto_unbox = TRUE))
text <- gsub(kernel_dir, "<kernel>", text, fixed = TRUE)
scratch <- dirname(Sys.getenv("ORCH_PIP_TARGET"))
dbutils.notebook.exit(gsub(scratch, "<scratch>", text, fixed = TRUE))
"""


@pytest.fixture
def pool(runtime: Workspace) -> Iterator[KernelPool]:
    kernels = KernelPool(
        root=runtime.root / "kernels", state_dir=runtime.root, size=1, languages=LANGUAGES
    )
    kernels.warm()
    yield kernels
    kernels.close()


def wait_idle(pool: KernelPool, language: Language, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while pool.idle()[language] < 1:
        assert time.monotonic() < deadline, "the pool did not start a kernel"
        time.sleep(0.05)


def run(runtime: Workspace, path: str, pool: KernelPool | None, **kwargs: object) -> NotebookResult:
    request = runtime.request(path, **kwargs)  # type: ignore[arg-type]
    return execute_notebook(
        request, resolver=runtime.resolver, cancel=threading.Event(), kernels=pool
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_pooled_kernel_looks_like_a_fresh_one(
    runtime: Workspace, pool: KernelPool, language: Language
) -> None:
    text = PY_FINGERPRINT if language == "PYTHON" else R_FINGERPRINT
    runtime.add("/Users/a/nb", source(text, language=language), language=language)
    fresh = run(runtime, "/Users/a/nb", None, parameters={"x": "1"})
    wait_idle(pool, language)
    pooled = run(runtime, "/Users/a/nb", pool, parameters={"x": "1"})
    assert fresh.status == pooled.status == "SUCCESS", (fresh.error, pooled.error)
    first, second = json.loads(fresh.exit_value or ""), json.loads(pooled.exit_value or "")
    assert first == second
    assert first["home"] == "<kernel>/home"
    assert first["tempdir"] in ("<kernel>/tmp", "<kernel>")  # R: a folder inside TMPDIR
    # Python reads its folder as on DBR 14+; R sees the real path (no mapping in R).
    real = str(runtime.workspace_root / "Users/a")
    assert first["cwd"] == ("/Workspace/Users/a" if language == "PYTHON" else real)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_state_crosses_from_one_run_to_the_next(
    runtime: Workspace, pool: KernelPool, language: Language, tmp_path: Path
) -> None:
    marker, pid_file = tmp_path / "home-file", tmp_path / "pid"
    if language == "PYTHON":
        first = source(
            "import wave, os\nleaked = 42\nos.environ['LEAKED'] = '1'\nos.chdir('/')\n"
            f"open(os.path.expanduser('~/mark'), 'w').write('x')\n"
            f"open({str(marker)!r}, 'w').write(os.path.expanduser('~/mark'))\n"
            f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))"
        )
        second = source(
            f"import os, sys\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
            "assert 'wave' not in sys.modules, 'module leaked'\n"
            "assert 'leaked' not in globals(), 'variable leaked'\n"
            "assert 'LEAKED' not in os.environ, 'environment leaked'\n"
            "assert os.getcwd() != '/', 'cwd leaked'\n"
            "assert not os.path.exists(os.path.expanduser('~/mark')), 'home leaked'"
        )
    else:
        first = source(
            "library(tools)\nleaked <- 42\nSys.setenv(LEAKED = '1')\nsetwd('/')\n"
            "writeLines('x', path.expand('~/mark'))\n"
            f"writeLines(path.expand('~/mark'), {json.dumps(str(marker))})\n"
            f"writeLines(as.character(Sys.getpid()), {json.dumps(str(pid_file))})",
            language="R",
        )
        second = source(
            f"writeLines(as.character(Sys.getpid()), {json.dumps(str(pid_file))})\n"
            "stopifnot(!'package:tools' %in% search(), !exists('leaked'),\n"
            "          Sys.getenv('LEAKED') == '', getwd() != '/',\n"
            "          !file.exists(path.expand('~/mark')))",
            language="R",
        )
    runtime.add("/Users/a/first", first, language=language)
    runtime.add("/Users/a/second", second, language=language)
    pids: list[int] = []
    for path in ("/Users/a/first", "/Users/a/second"):
        wait_idle(pool, language)
        idle = kernel_pids()
        result = run(runtime, path, pool)
        assert result.status == "SUCCESS", (path, result.error, result.error_trace)
        (pid,) = read_pids(pid_file)
        assert pid in idle  # the run got a pooled kernel
        pids.append(pid)
    assert pids[0] != pids[1]
    home_file = Path(marker.read_text().strip())
    assert not home_file.exists()  # the first run's HOME went with its kernel
    assert_all_gone(pids, within=10)


def test_cancel_kills_the_runs_kernel_and_leaves_the_pool(
    runtime: Workspace, pool: KernelPool, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    runtime.add(
        "/Users/a/sleeper",
        source(
            f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
        ),
    )
    wait_idle(pool, "PYTHON")
    cancel = threading.Event()
    results: list[NotebookResult] = []
    request = runtime.request("/Users/a/sleeper")
    thread = threading.Thread(
        target=lambda: results.append(
            execute_notebook(request, resolver=runtime.resolver, cancel=cancel, kernels=pool)
        )
    )
    thread.start()
    (kernel,) = read_pids(pid_file)
    wait_idle(pool, "PYTHON")  # refilled meanwhile
    idle = kernel_pids() - {kernel}
    cancel.set()
    thread.join(10)
    assert results[0].status == "CANCELED"
    assert_all_gone([kernel], within=10)
    assert all(psutil.Process(pid).is_running() for pid in idle)


def test_close_kills_the_idle_kernels_and_removes_their_folders(runtime: Workspace) -> None:
    pool = KernelPool(
        root=runtime.root / "kernels", state_dir=runtime.root, size=2, languages=("PYTHON",)
    )
    pool.warm()
    deadline = time.monotonic() + 60
    while pool.idle()["PYTHON"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    kernels = sorted(kernel_pids())
    assert len(kernels) >= 2
    pool.close()
    assert_all_gone(kernels, within=10)
    assert list((runtime.root / "kernels").iterdir()) == []
    assert pool.take("PYTHON") is None


def test_a_language_that_cannot_start_is_not_retried_at_once(
    runtime: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed start is tried again after the back-off (60 s), not before: the pool's clock
    is moved by hand, while the pool itself looks again every 2 s of real time."""
    monkeypatch.setenv("PATH", "/nonexistent")  # no R on the PATH
    clock = FakeClock()
    pool = KernelPool(
        root=runtime.root / "kernels",
        state_dir=runtime.root,
        size=2,
        languages=("R",),
        clock=clock.monotonic,
    )

    def attempts() -> int:
        return sum("cannot start a R kernel" in r.getMessage() for r in caplog.records)

    caplog.set_level(logging.WARNING, logger="orchestrator.local.runtime.pool")
    pool.warm()
    try:
        assert wait_until(lambda: attempts() == 1, timeout=30)
        assert pool.idle() == {"R": 0}
        assert pool.take("R") is None
        clock.sleep(59)  # the documented back-off is 60 s
        # the pool looks again every REFILL_PAUSE_SECONDS: two looks, still inside the back-off
        time.sleep(2 * REFILL_PAUSE_SECONDS + 0.5)
        assert attempts() == 1
        clock.sleep(2)  # past the back-off: the next look tries again
        assert wait_until(lambda: attempts() == 2, timeout=30)
    finally:
        pool.close()


def test_a_full_pool_imports_sparks_client_ahead_for_the_notebooks_that_use_it(
    runtime: Workspace,
) -> None:
    """One kernel per worker imports Spark's client, binding no name; a notebook that mentions
    spark takes it, one that does not takes a kernel without it."""
    pool = KernelPool(
        root=runtime.root / "kernels", state_dir=runtime.root, size=1, languages=("PYTHON",)
    )
    pool.warm()
    deadline = time.monotonic() + 90
    ready = pool._ready["PYTHON"]  # private: the test waits for the preload to be done
    while not (len(ready) == 2 and any(k.preloaded and k.available.is_set() for k in ready)):
        assert time.monotonic() < deadline, "no kernel was preloaded"
        time.sleep(0.1)
    time.sleep(0.5)
    assert sum(k.preloaded for k in ready) == 1  # one per worker
    runtime.add(
        "/Users/a/plain",
        source(
            "import sys\n"
            "dbutils.notebook.exit(str(any(m.endswith('connect.session') for m in sys.modules)))"
        ),
    )
    runtime.add(
        "/Users/a/nb",
        source(
            "import json, sys\ndbutils.notebook.exit(json.dumps("
            "['pyspark.sql.connect.session' in sys.modules, 'pyspark' in globals()]))"
        ),
    )
    try:
        plain = run(runtime, "/Users/a/plain", pool)
        result = run(runtime, "/Users/a/nb", pool)
    finally:
        pool.close()
    assert plain.status == "SUCCESS", plain.error
    assert plain.exit_value == "False"
    assert result.status == "SUCCESS", result.error
    assert json.loads(result.exit_value or "") == [True, False]


class FakeCpu(CpuWatch):
    """The machine's CPUs as the test says: quiet or not; counts how often the pool asked."""

    def __init__(self, quiet: bool) -> None:
        super().__init__()
        self.is_quiet = quiet
        self.asked = 0

    def quiet(self) -> bool:
        self.asked += 1
        return self.is_quiet


def wait_for(pool: KernelPool, count: int, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while pool.idle()["PYTHON"] < count:
        assert time.monotonic() < deadline, f"the pool did not reach {count} kernels"
        time.sleep(0.05)


def test_python_keeps_two_kernels_per_worker_and_waits_for_quiet_cpus_while_runs_execute(
    runtime: Workspace,
) -> None:
    """A task's entry notebook and its child each take a Python kernel; while runs execute,
    a busy machine gets no kernel starts from the pool, a quiet one does."""
    cpu = FakeCpu(quiet=False)
    pool = KernelPool(
        root=runtime.root / "kernels",
        state_dir=runtime.root,
        size=1,
        languages=("PYTHON",),
        cpu=cpu,
    )
    pool.warm()
    taken: list[PooledKernel] = []
    try:
        wait_for(pool, 2)
        time.sleep(0.5)
        assert pool.idle() == {"PYTHON": 2}  # two per worker, no more
        with pool.busy():
            taken += [k for k in (pool.take("PYTHON"), pool.take("PYTHON")) if k is not None]
            assert len(taken) == 2
            # the pool looked at the busy machine twice since (it looks every second) and
            # refrained each time: not a pause that a slow machine would pass by accident
            asked = cpu.asked
            assert wait_until(lambda: cpu.asked >= asked + 2, timeout=30)
            assert pool.idle() == {"PYTHON": 0}
            assert pool._starting["PYTHON"] == 0  # private: nothing is starting either
            cpu.is_quiet = True
            wait_for(pool, 1)  # a quiet machine: the pool fills while the run goes on
            cpu.is_quiet = False
            taken += [k for k in (pool.take("PYTHON"),) if k is not None]
        wait_for(pool, 2)  # the runs ended: it fills up
    finally:
        for pooled in taken:
            pooled.kernel.kill()
        pool.close()


def test_the_cpu_watch_reads_idle_shares_over_a_second_or_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Times = collections.namedtuple("Times", "user system idle iowait guest")
    samples = iter(
        [
            Times(0.0, 0.0, 0.0, 0.0, 0.0),  # first look: no verdict yet (not quiet)
            Times(0.2, 0.0, 0.0, 0.0, 0.0),  # under a second later: the last verdict stands
            Times(1.5, 0.5, 0.0, 0.0, 1.0),  # 2 s busy of 2 (guest is inside user): busy
            Times(1.7, 0.5, 1.6, 0.2, 1.0),  # 0.2 s busy of 2: quiet
            Times(1.7, 0.5, 9.6, 0.2, 1.0),  # 8 s later, all idle: a pause, not judged
            Times(3.2, 0.5, 9.6, 0.2, 1.0),  # 1.5 s busy of 1.5 since the pause: busy
        ]
    )
    monkeypatch.setattr(psutil, "cpu_times", lambda: next(samples))
    monkeypatch.setattr(psutil, "cpu_count", lambda: 1)
    watch = CpuWatch()
    assert [watch.quiet() for _ in range(6)] == [False, False, False, True, False, False]


def wait_starting(pool: KernelPool, language: Language, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while pool.starting()[language] < 1:
        assert time.monotonic() < deadline, "the pool started no kernel"
        time.sleep(0.005)


def test_a_take_waits_for_a_starting_kernel_rather_than_start_a_second(runtime: Workspace) -> None:
    pool = KernelPool(
        root=runtime.root / "kernels", state_dir=runtime.root, size=1, languages=("PYTHON",)
    )
    pool.warm()
    try:
        wait_starting(pool, "PYTHON")
        assert pool.idle() == {"PYTHON": 0}
        pooled = pool.take("PYTHON")  # none ready, one starting: the take waits for it
        assert pooled is not None
        assert pooled.kernel.exited is False
        pooled.kernel.kill()
    finally:
        pool.close()


class Cancelled(Exception):
    pass


def test_a_cancel_ends_a_take_that_waits_for_a_starting_kernel(runtime: Workspace) -> None:
    pool = KernelPool(
        root=runtime.root / "kernels", state_dir=runtime.root, size=1, languages=("PYTHON",)
    )
    pool.warm()
    calls: list[float] = []

    def cancelled() -> None:
        calls.append(time.monotonic())
        raise Cancelled

    try:
        wait_starting(pool, "PYTHON")
        with pytest.raises(Cancelled):
            pool.take("PYTHON", check=cancelled)
        assert len(calls) == 1
        pooled = pool.take("PYTHON")  # the next take waits again (the first one let go)
        assert pooled is not None
        pooled.kernel.kill()
    finally:
        pool.close()


def test_warm_with_languages_starts_only_theirs_until_a_run_asks(runtime: Workspace) -> None:
    """An embedded workspace's build names its notebooks' languages: an R kernel (1.5 CPU-s)
    starts only when a run asks for one."""
    require_r()
    pool = KernelPool(root=runtime.root / "kernels", state_dir=runtime.root, size=1)
    pool.warm(languages={"PYTHON"})
    try:
        wait_for(pool, 2)
        time.sleep(0.5)
        assert pool.idle() == {"PYTHON": 2, "R": 0}
        assert pool.starting() == {"PYTHON": 0, "R": 0}
        assert pool.take("R") is None  # none ready or starting: the run starts its own
        wait_idle(pool, "R")  # and the pool keeps one from now on
    finally:
        pool.close()


def test_a_spark_notebook_forks_from_the_spark_zygote_others_from_the_plain_one(
    runtime: Workspace,
) -> None:
    """A build that runs Spark (``warm(spark=True)``) starts the Spark zygote, a branch of
    the zygote: a notebook that mentions spark and finds no preloaded idle kernel gets a fork
    of it, Spark's client loaded and no name bound; a notebook that does not gets a plain
    fork."""
    pool = KernelPool(
        root=runtime.root / "kernels", state_dir=runtime.root, size=1, languages=("PYTHON",)
    )
    pool._preload = None  # private: no idle kernel preloads, so the zygote's fork is taken
    pool.warm(spark=True)
    parent = "__import__('os').getppid()"
    runtime.add(
        "/Users/a/plain",
        source(
            "import json, sys\ndbutils.notebook.exit(json.dumps("
            f"[any(m.endswith('connect.session') for m in sys.modules), {parent}]))"
        ),
    )
    runtime.add(
        "/Users/a/nb",
        source(
            "import json, sys\ndbutils.notebook.exit(json.dumps("
            f"['pyspark.sql.connect.session' in sys.modules, 'pyspark' in globals(), {parent}]))"
        ),
    )
    try:
        plain = run(runtime, "/Users/a/plain", pool)
        spark = run(runtime, "/Users/a/nb", pool)
        zygote, spark_zygote = pool.forks.zygote, pool.forks.spark_zygote
        assert zygote is not None
        assert spark_zygote is not None
        assert psutil.Process(spark_zygote.pid).ppid() == zygote.pid  # forked from it
    finally:
        pool.close()
    assert plain.status == "SUCCESS", plain.error
    loaded, plain_parent = json.loads(plain.exit_value or "")
    assert loaded is False
    assert plain_parent == zygote.pid
    assert spark.status == "SUCCESS", spark.error
    loaded, bound, spark_parent = json.loads(spark.exit_value or "")
    assert (loaded, bound) == (True, False)
    assert spark_parent == spark_zygote.pid
