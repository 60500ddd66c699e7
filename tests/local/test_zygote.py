"""The kernel zygote with real ipykernels: forked kernels answer, are the pool's Python kernels,
differ from each other where a fresh process would (random state), report their exit codes,
and die with the zygote; a zygote that cannot start leaves the pool on plain processes.

What a forked kernel looks like to a notebook (cwd, ``sys.path``, environment, home, temp
dir) is compared with a fresh kernel's in test_kernel_pool's fingerprint test."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orchestrator.local.runtime import zygote as zygote_module
from orchestrator.local.runtime.forks import KernelForks
from orchestrator.local.runtime.kernel_process import Kernel, KernelDiedError, Spawn
from orchestrator.local.runtime.launch import KERNEL_START_TIMEOUT, kernel_argv, kernel_base_env
from orchestrator.local.runtime.pool import KernelPool, PooledKernel
from orchestrator.local.runtime.zygote import Zygote, ZygoteBranch, ZygoteError
from tests.local.runtime_helpers import assert_all_gone

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[Zygote]:
    folder = tmp_path / "zygote"
    started = Zygote.start(
        env=kernel_base_env(tmp_path, folder), cwd=folder, log_file=folder / "zygote.log"
    )
    yield started
    started.close()


def start_kernel(folder: Path, state: Path, spawn: Spawn | None) -> Kernel:
    """A Python kernel in ``folder``: forked by ``spawn``, or a process of its own."""
    folder.mkdir(parents=True)
    return Kernel.start(
        argv=kernel_argv("PYTHON"),
        cwd=folder,
        env=kernel_base_env(state, folder),
        work_dir=folder,
        check=lambda: None,
        start_timeout=KERNEL_START_TIMEOUT,
        spawn=spawn,
    )


def forked_kernel(zygote: Zygote, folder: Path, state: Path) -> Kernel:
    return start_kernel(folder, state, zygote.spawn)


def wait_gone(server: Zygote | ZygoteBranch, within: float = 10) -> None:
    """Until the client sees the fork server gone (its reader reached the end)."""
    deadline = time.monotonic() + within
    while server.alive:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def evaluate(kernel: Kernel, expression: str) -> object:
    """The value of a Python expression in ``kernel`` (printed as JSON)."""
    texts: list[str] = []

    def collect(msg: dict[str, object]) -> None:
        content = msg.get("content")
        if msg.get("msg_type") == "stream" and isinstance(content, dict):
            texts.append(str(content.get("text", "")))

    reply = kernel.execute(
        f"import json as _j; print(_j.dumps({expression}))", on_message=collect, check=lambda: None
    )
    assert reply.status == "ok", reply
    return json.loads("".join(texts))


def test_forked_kernels_answer_and_differ_where_fresh_processes_would(
    zygote: Zygote, tmp_path: Path
) -> None:
    first = forked_kernel(zygote, tmp_path / "k1", tmp_path)
    second = forked_kernel(zygote, tmp_path / "k2", tmp_path)
    try:
        for kernel, folder in ((first, tmp_path / "k1"), (second, tmp_path / "k2")):
            assert psutil.Process(kernel.pid).ppid() == zygote.pid
            state = evaluate(
                kernel,
                "[__import__('os').getcwd(), __import__('os').environ['HOME'],"
                " __import__('tempfile').gettempdir(), __import__('sys').argv[0],"
                " __import__('os').getsid(0) == __import__('os').getpid()]",
            )
            assert isinstance(state, list)
            assert state[:3] == [str(folder), str(folder / "home"), str(folder / "tmp")]
            assert str(state[3]).endswith("/ipykernel_launcher.py")  # as `python -m` sets it
            assert state[4] is True  # a session of its own
        draws = [evaluate(k, "__import__('random').random()") for k in (first, second)]
        assert draws[0] != draws[1]  # the random module is reseeded in each fork
    finally:
        first.kill()
        second.kill()
    assert_all_gone([first.pid, second.pid], within=10)


def test_a_forked_kernel_has_loaded_the_modules_a_fresh_one_has(
    zygote: Zygote, tmp_path: Path
) -> None:
    """The zygote imports nothing a fresh kernel would not have imported by its first cell."""
    loaded = "sorted(__import__('sys').modules)"
    forked = forked_kernel(zygote, tmp_path / "forked", tmp_path)
    fresh = start_kernel(tmp_path / "fresh", tmp_path, None)
    try:
        assert evaluate(forked, loaded) == evaluate(fresh, loaded)
    finally:
        forked.kill()
        fresh.kill()


def test_a_forked_kernel_s_collector_skips_the_zygote_s_objects_and_collects_its_own(
    zygote: Zygote, tmp_path: Path
) -> None:
    """The zygote's imports are frozen (gc.freeze): a kernel's collections leave them, and
    the pages they share with the zygote, alone; the kernel's own garbage is collected."""
    kernel = forked_kernel(zygote, tmp_path / "k", tmp_path)
    try:
        frozen = evaluate(kernel, "__import__('gc').get_freeze_count()")
        assert isinstance(frozen, int)
        assert frozen > 10_000
        assert evaluate(kernel, "__import__('gc').isenabled()") is True
        # a list that holds itself, dropped at once: only a collection frees it
        freed = evaluate(kernel, "[c.append(c) for c in [[]]] and __import__('gc').collect()")
        assert isinstance(freed, int)
        assert freed >= 1
    finally:
        kernel.kill()


def test_the_exit_code_of_a_forked_kernel_is_reported(zygote: Zygote, tmp_path: Path) -> None:
    kernel = forked_kernel(zygote, tmp_path / "k", tmp_path)
    with pytest.raises(KernelDiedError, match=r"exit code 7"):
        kernel.execute("import os; os._exit(7)", on_message=lambda _msg: None, check=lambda: None)
    kernel.kill()


def test_a_kernel_that_fails_to_start_names_its_error(zygote: Zygote, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    log = folder / "kernel.log"
    process = zygote.spawn(
        [sys.executable, "-m", "no_such_kernel_module"], cwd=folder, env=dict(os.environ), log=log
    )
    assert process.wait(30) == 1
    assert "No module named no_such_kernel_module" in log.read_text()


def test_requests_that_arrive_together_are_all_answered(zygote: Zygote, tmp_path: Path) -> None:
    """Several runs fork at the same moment: their requests can reach the zygote in one read,
    and each gets its own fork (``python -m this`` prints and exits 0)."""
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def spawn(index: int) -> None:
        barrier.wait()
        process = zygote.spawn(
            [sys.executable, "-m", "this"],
            cwd=tmp_path,
            env=dict(os.environ),
            log=tmp_path / f"this-{index}.log",
        )
        codes.append(process.wait(30))

    threads = [threading.Thread(target=spawn, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert codes == [0, 0, 0, 0]
    assert all("Beautiful is better" in (tmp_path / f"this-{i}.log").read_text() for i in range(4))


def test_a_fork_that_answers_after_its_spawn_gave_up_is_killed(
    zygote: Zygote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spawn that stops waiting (the zygote slow to answer) leaves no process behind."""
    monkeypatch.setattr(zygote_module, "SPAWN_TIMEOUT", 0.0)  # gives up before any reply
    sleeper = [sys.executable, "-m", "timeit", "-n1", "-r1", "-s", "import time", "time.sleep(60)"]
    with pytest.raises(ZygoteError, match="did not answer"):
        zygote.spawn(sleeper, cwd=tmp_path, env=dict(os.environ), log=tmp_path / "late.log")
    deadline = time.monotonic() + 30
    while -9 not in zygote._exits.values():  # private: the exit codes the zygote reported
        assert time.monotonic() < deadline, "the late fork was not killed"
        time.sleep(0.05)
    assert psutil.Process(zygote.pid).children() == []


def test_kernels_die_with_the_zygote(zygote: Zygote, tmp_path: Path) -> None:
    kernel = forked_kernel(zygote, tmp_path / "k", tmp_path)
    os.kill(zygote.pid, signal.SIGKILL)
    assert_all_gone([kernel.pid], within=10)
    wait_gone(zygote)
    with pytest.raises(ZygoteError):
        zygote.spawn(kernel_argv("PYTHON"), cwd=tmp_path, env={}, log=tmp_path / "x.log")
    kernel.kill()


def test_the_zygote_exits_when_closed_with_no_kernel_left(zygote: Zygote) -> None:
    process = psutil.Process(zygote.pid)
    zygote.close(timeout=10)
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def test_the_pools_python_kernels_are_forked_and_a_dead_zygote_is_replaced(
    tmp_path: Path,
) -> None:
    pool = KernelPool(root=tmp_path / "kernels", state_dir=tmp_path, size=1, languages=("PYTHON",))
    pool.warm()
    try:
        first = take(pool)
        zygote_pid = psutil.Process(first.kernel.pid).ppid()
        assert "zygote_main.py" in " ".join(psutil.Process(zygote_pid).cmdline())
        first.kernel.kill()
        os.kill(zygote_pid, signal.SIGKILL)
        pooled = take(pool)  # not an idle kernel that died with the zygote: a new zygote's
        parent = psutil.Process(pooled.kernel.pid).ppid()
        assert parent not in (zygote_pid, os.getpid())
        assert evaluate(pooled.kernel, "1 + 1") == 2
        pooled.kernel.kill()
    finally:
        pool.close()


def take(pool: KernelPool) -> PooledKernel:
    deadline = time.monotonic() + 60
    while True:
        pooled = pool.take("PYTHON")
        if pooled is not None:
            return pooled
        assert time.monotonic() < deadline, "no kernel from the pool"
        time.sleep(0.05)


def test_a_zygote_that_cannot_start_leaves_the_pool_on_plain_kernels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "brokenzygote_main.py"
    broken.write_text("import sys\nsys.exit('zygote failed on purpose')\n")
    monkeypatch.setattr(zygote_module, "_SCRIPT", broken)
    with pytest.raises(ZygoteError, match="zygote failed on purpose"):
        Zygote.start(env=dict(os.environ), cwd=tmp_path / "z", log_file=tmp_path / "z.log")
    pool = KernelPool(root=tmp_path / "kernels", state_dir=tmp_path, size=1, languages=("PYTHON",))
    pool.warm()
    try:
        pooled = take(pool)
        assert psutil.Process(pooled.kernel.pid).ppid() == os.getpid()  # plain process
        pooled.kernel.kill()
    finally:
        pool.close()


def test_a_zygote_given_modules_forks_kernels_that_have_them_and_reseeds_random(
    tmp_path: Path,
) -> None:
    """The Spark zygote's mechanism: modules imported ahead are loaded in every fork, and the
    global random generators loaded in the zygote (NumPy's among them) are seeded anew in each
    fork, or two kernels would draw the same numbers."""
    folder = tmp_path / "zygote"
    zygote = Zygote.start(
        env=kernel_base_env(tmp_path, folder),
        cwd=folder,
        log_file=folder / "zygote.log",
        preload=("numpy.random",),
    )
    kernels = [forked_kernel(zygote, tmp_path / f"k{i}", tmp_path) for i in range(2)]
    try:
        loaded = "'numpy.random' in __import__('sys').modules"
        assert [evaluate(k, loaded) for k in kernels] == [True, True]
        for draw in ("__import__('numpy').random.random()", "__import__('random').random()"):
            first, second = (evaluate(k, draw) for k in kernels)
            assert first != second, draw
    finally:
        for kernel in kernels:
            kernel.kill()
        zygote.close()


def test_a_zygote_whose_module_cannot_be_imported_does_not_start(tmp_path: Path) -> None:
    folder = tmp_path / "zygote"
    with pytest.raises(ZygoteError, match="No module named 'no_such_module_here'"):
        Zygote.start(
            env=kernel_base_env(tmp_path, folder),
            cwd=folder,
            log_file=folder / "zygote.log",
            preload=("no_such_module_here",),
        )


def branch_of(zygote: Zygote, tmp_path: Path, *modules: str) -> ZygoteBranch:
    folder = tmp_path / "branch"
    return zygote.branch(
        modules,
        env=kernel_base_env(tmp_path, folder),
        cwd=folder,
        log_file=folder / "zygote.log",
        owned_dir=folder,
    )


def test_a_branch_forks_kernels_that_have_its_modules_and_ends_when_closed(
    zygote: Zygote, tmp_path: Path
) -> None:
    """The Spark zygote is a branch of the zygote: forked from it, it imports more, and its
    kernels have that loaded, with their own random draws; the zygote's own do not."""
    branch = branch_of(zygote, tmp_path, "colorsys", "numpy.random")
    assert psutil.Process(branch.pid).ppid() == zygote.pid
    kernels = [start_kernel(tmp_path / f"b{i}", tmp_path, branch.spawn) for i in range(2)]
    plain = forked_kernel(zygote, tmp_path / "plain", tmp_path)
    try:
        loaded = "'colorsys' in __import__('sys').modules"
        assert [evaluate(k, loaded) for k in kernels] == [True, True]
        assert evaluate(plain, loaded) is False
        assert [psutil.Process(k.pid).ppid() for k in kernels] == [branch.pid] * 2
        first, second = (evaluate(k, "__import__('numpy').random.random()") for k in kernels)
        assert first != second
        frozen = evaluate(kernels[0], "__import__('gc').get_freeze_count()")
        assert isinstance(frozen, int)
        assert frozen > 10_000
    finally:
        for kernel in (*kernels, plain):
            kernel.kill()
    assert_all_gone([k.pid for k in kernels], within=10)
    process = psutil.Process(branch.pid)
    branch.close(timeout=10)
    assert not branch.alive
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    assert not (tmp_path / "branch").exists()
    assert zygote.alive  # the zygote goes on
    again = forked_kernel(zygote, tmp_path / "again", tmp_path)
    again.kill()


def test_a_branch_and_its_kernels_die_with_the_zygote(zygote: Zygote, tmp_path: Path) -> None:
    branch = branch_of(zygote, tmp_path, "colorsys")
    kernel = start_kernel(tmp_path / "k", tmp_path, branch.spawn)
    os.kill(zygote.pid, signal.SIGKILL)
    assert_all_gone([branch.pid, kernel.pid], within=10)
    wait_gone(branch)
    with pytest.raises(ZygoteError):
        branch.spawn(kernel_argv("PYTHON"), cwd=tmp_path, env={}, log=tmp_path / "x.log")
    kernel.kill()


def test_a_branch_whose_module_cannot_be_imported_names_the_error(
    zygote: Zygote, tmp_path: Path
) -> None:
    with pytest.raises(ZygoteError, match="No module named 'no_such_module_here'"):
        branch_of(zygote, tmp_path, "no_such_module_here")
    assert not (tmp_path / "branch").exists()
    kernel = forked_kernel(zygote, tmp_path / "k", tmp_path)  # the zygote goes on
    kernel.kill()


def test_with_no_zygote_the_spark_zygote_is_one_of_its_own(tmp_path: Path) -> None:
    """The Spark zygote branches from the zygote; when none starts, it starts on its own."""
    forks = KernelForks(root=tmp_path / "kernels", state_dir=tmp_path, check=lambda: None)
    try:
        assert forks.spark_ready(None)
        spark_zygote = forks.spark_zygote
        assert isinstance(spark_zygote, Zygote)
        assert forks.zygote is None
        assert psutil.Process(spark_zygote.pid).ppid() == os.getpid()
    finally:
        forks.close()


def test_a_run_that_asks_while_the_zygote_starts_waits_and_forks_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a process of its own (three times the CPU, as long): the run's kernel is forked
    once the zygote is up."""
    from orchestrator.local.runtime import forks

    real_start = Zygote.start

    def slow_start(**kwargs: object) -> Zygote:
        time.sleep(1.0)
        return real_start(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(forks.Zygote, "start", staticmethod(slow_start))
    pool = KernelPool(root=tmp_path / "kernels", state_dir=tmp_path, size=1, languages=("PYTHON",))
    pool.warm()
    try:
        deadline = time.monotonic() + 10
        while not pool.forks.starting:  # the test asks while it starts
            assert time.monotonic() < deadline, "the zygote did not start"
            time.sleep(0.01)
        spawn = pool.spawner("PYTHON")
        assert spawn is not None
        kernel = start_kernel(tmp_path / "run", tmp_path, spawn)
        try:
            parent = psutil.Process(kernel.pid).ppid()
            assert "zygote_main.py" in " ".join(psutil.Process(parent).cmdline())
        finally:
            kernel.kill()
    finally:
        pool.close()
