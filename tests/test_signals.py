"""SIGTERM/SIGINT sent to a real ``orchestrator build`` process at each phase of a build: deploy,
wait, collect, the shielded cancel and the final clean.

The build runs against the ``server`` fixture (a local workspace in this process), so the test
reads the run and the workspace tree afterwards. A phase is stretched with the workspace's fault
injection (a rate limit or latency) so that a signal lands in it; the build's progress lines say
which phase it is in. Plus the signal module's own rules, in-process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from databricks.sdk.service import jobs

from orchestrator import signals
from orchestrator.local.server import FaultSettings, LocalWorkspace
from tests.buildkit import BUILD_ROOT, build_runs, command, in_subprocess, remote_args
from tests.conftest import TOKEN, sdk_client
from tests.test_build import slow_project

REPO_FOLDER = f"{BUILD_ROOT}/sample"


class BuildProcess:
    """``orchestrator build`` in a subprocess, its output read line by line as it comes."""

    def __init__(self, project: Path, server: LocalWorkspace, build_id: str, *args: str) -> None:
        env = {**os.environ, "ORCH_TEST_TOKEN": TOKEN, "CI": "true"}
        argv = command(project, "build", "--build-id", build_id, *remote_args(server), *args)
        self.proc = subprocess.Popen(
            in_subprocess(*argv),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until a line containing ``text`` has been printed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line with {text!r} in:\n{self.output}")
                self._changed.wait(min(left, 0.5))

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 90) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def builds() -> Iterator[list[BuildProcess]]:
    started: list[BuildProcess] = []
    yield started
    for build in started:
        if build.proc.poll() is None:
            build.proc.kill()
            build.proc.wait()


def folder_exists(server: LocalWorkspace, build_id: str) -> bool:
    from databricks.sdk.errors import NotFound

    try:
        sdk_client(server).workspace.get_status(f"{REPO_FOLDER}/{build_id}")
    except NotFound:
        return False
    return True


def result_of(server: LocalWorkspace) -> jobs.RunResultState | None:
    """The result of the one run on the server."""
    runs = build_runs(sdk_client(server))
    assert len(runs) == 1, runs
    return runs[0].state.result_state if runs[0].state else None


def run_id_of(server: LocalWorkspace) -> int:
    (run,) = build_runs(sdk_client(server))
    return int(run.run_id or 0)


def no_active_runs(server: LocalWorkspace) -> bool:
    return list(sdk_client(server).jobs.list_runs(active_only=True)) == []


# -- at each phase -----------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_deploy_starts_no_run_and_removes_the_folder(
    project: Path, server: LocalWorkspace, builds: list[BuildProcess]
) -> None:
    # one import at a time, at most one every 2 s: the deploy lasts
    server.faults.configure(FaultSettings(rate_limits={"POST workspace/import": 0.5}))
    build = BuildProcess(project, server, "s1", "--set", "concurrency.deploy=1")
    builds.append(build)
    build.wait_for("==> deploy")
    build.signal()
    assert build.finish() == 143, build.output
    server.faults.configure(FaultSettings())
    assert "cancelled by SIGTERM" in build.output
    assert build_runs(sdk_client(server)) == []
    assert not folder_exists(server, "s1"), build.output


@pytest.mark.slow
def test_sigint_while_waiting_cancels_the_run_and_exits_130(
    project: Path, server: LocalWorkspace, builds: list[BuildProcess]
) -> None:
    slow_project(project)
    build = BuildProcess(project, server, "s2")
    builds.append(build)
    build.wait_for("RUNNING")
    build.signal(signal.SIGINT)
    assert build.finish() == 130, build.output
    assert result_of(server) == jobs.RunResultState.CANCELED
    assert no_active_runs(server)
    assert not folder_exists(server, "s2"), build.output


@pytest.mark.slow
def test_sigterm_while_collecting_exits_143_and_cleans(
    project: Path, server: LocalWorkspace, builds: list[BuildProcess]
) -> None:
    build = BuildProcess(project, server, "s3")
    builds.append(build)
    build.wait_for("==> run ")
    # every request of the collect step now takes a while
    server.faults.configure(FaultSettings(latency_ms=700))
    build.wait_for("==> collect results")
    build.signal()
    assert build.finish() == 143, build.output
    server.faults.configure(FaultSettings())
    assert result_of(server) == jobs.RunResultState.SUCCESS  # it had ended
    assert not folder_exists(server, "s3"), build.output


@pytest.mark.slow
def test_a_second_signal_during_the_shielded_cancel_still_waits_for_it(
    project: Path, server: LocalWorkspace, builds: list[BuildProcess]
) -> None:
    slow_project(project)
    build = BuildProcess(project, server, "s4")
    builds.append(build)
    build.wait_for("RUNNING")
    server.faults.configure(FaultSettings(latency_ms=700))  # the cancel takes seconds
    build.signal()
    build.wait_for("==> cancelling run")
    build.signal()
    assert build.finish() == 143, build.output
    server.faults.configure(FaultSettings())
    assert "still cleaning up" in build.output
    assert result_of(server) == jobs.RunResultState.CANCELED
    assert no_active_runs(server)
    assert not folder_exists(server, "s4"), build.output


@pytest.mark.slow
def test_a_third_signal_exits_at_once_naming_what_is_left(
    project: Path, server: LocalWorkspace, builds: list[BuildProcess]
) -> None:
    slow_project(project)
    build = BuildProcess(project, server, "s5")
    builds.append(build)
    build.wait_for("RUNNING")
    server.faults.configure(FaultSettings(latency_ms=3000))  # the cancel takes long
    build.signal()
    build.wait_for("==> cancelling run")
    build.signal()
    build.wait_for("still cleaning up")
    build.signal()
    assert build.finish(timeout=20) == 143, build.output
    server.faults.configure(FaultSettings())
    run_id = run_id_of(server)
    assert f"may be left behind: run {run_id} (may still be running)" in build.output
    assert f"workspace folder {REPO_FOLDER}/s5" in build.output
    assert "`orchestrator cleanup` removes them" in build.output
    sdk_client(server).jobs.cancel_run(run_id)  # what cleanup would do


@pytest.mark.slow
def test_sigterm_during_the_final_clean_exits_143_after_it(
    project: Path, server: LocalWorkspace, builds: list[BuildProcess]
) -> None:
    build = BuildProcess(project, server, "s6")
    builds.append(build)
    build.wait_for("==> collect results")
    server.faults.configure(FaultSettings(latency_ms=1500))  # the delete takes a while
    build.wait_for("==> clean ")
    build.signal()
    assert build.finish() == 143, build.output
    server.faults.configure(FaultSettings())
    assert "cleaned the build folder and storage prefix" in build.output
    assert "after finishing the cleanup under way" in build.output
    assert result_of(server) == jobs.RunResultState.SUCCESS
    assert not folder_exists(server, "s6"), build.output
    assert not (project / ".orchestrator" / "storage" / "sample" / "s6").exists()


# -- the module's rules, in-process ------------------------------------------------------------


def test_a_signal_held_in_a_shielded_section_is_raised_when_it_ends() -> None:
    done = []
    with signals.cancel_on_signals():
        with pytest.raises(signals.BuildCancelled) as raised, signals.shielded():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs; nothing is raised here
            done.append("cleanup finished")
        assert raised.value.exit_code == 143
    assert done == ["cleanup finished"]


def test_nested_shields_raise_only_at_the_outermost_end() -> None:
    order = []
    with signals.cancel_on_signals(), pytest.raises(signals.BuildCancelled):
        with signals.shielded():
            with signals.shielded():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            order.append("inner ended")
        order.append("not reached")
    assert order == ["inner ended"]


def test_outside_a_shield_a_signal_raises_at_once() -> None:
    with signals.cancel_on_signals(), pytest.raises(signals.BuildCancelled) as raised:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert raised.value.exit_code == 130


def test_the_grace_period_ends_a_stuck_cleanup(tmp_path: Path) -> None:
    script = tmp_path / "stuck.py"
    script.write_text(
        "import os, signal, time\n"
        "from orchestrator import signals\n"
        "with signals.cancel_on_signals(grace=0.5), "
        "signals.at_stake(lambda: ['workspace folder /x/y']):\n"
        "    with signals.shielded():\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(30)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 143
    assert "cleanup still running after 0.5 s" in done.stderr
    assert "may be left behind: workspace folder /x/y" in done.stderr


def test_a_signal_while_submitting_work_waits_for_what_runs_and_cancels_the_rest() -> None:
    """A signal in the middle of ``submit_all`` is raised once everything is submitted; what
    had not started is cancelled, and leaving the pool waits for what had: no worker runs on
    after the build has moved on to its cleanup."""
    from concurrent.futures import ThreadPoolExecutor

    started, finished = [], []
    gate = threading.Event()

    def work(item: int) -> None:
        started.append(item)
        gate.wait(5)
        finished.append(item)

    def items() -> Iterator[int]:
        for item in range(6):
            if item == 3:
                signal.raise_signal(signal.SIGTERM)  # handled in this (the main) thread, now
            yield item

    with (
        signals.cancel_on_signals(),
        pytest.raises(signals.BuildCancelled),
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        try:
            signals.submit_all(pool, work, items())
        finally:
            gate.set()
    assert sorted(finished) == sorted(started)  # every started item ended inside the pool
    assert len(started) <= 2  # two workers: the others were cancelled, never run
