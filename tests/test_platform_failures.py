"""A run the platform broke (INTERNAL_ERROR, a lost cluster or driver, a cloud failure) is exit 3,
not a test failure (exit 1); its synthesized test cases are still written and say it was the
platform. End to end: the workspace (``orchestrator local serve``) is SIGKILLed in the middle of
a run and restarted on the same state, which ends the run INTERNAL_ERROR."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import jobs

from orchestrator.adapters.databricks import platform_failure
from tests.buildkit import command, in_subprocess, junit, workspace_flags
from tests.conftest import TOKEN
from tests.test_build import slow_project
from tests.waiting import running_run


def run(
    result: str | None,
    *,
    life_cycle: str = "TERMINATED",
    code: str | None = None,
    kind: str | None = None,
    message: str = "",
) -> jobs.Run:
    state: dict[str, Any] = {"life_cycle_state": life_cycle, "state_message": message}
    if result:
        state["result_state"] = result
    task: dict[str, Any] = {"task_key": "run_pytest", "state": state}
    if code or kind:
        details = {"code": code, "type": kind, "message": message}
        task["status"] = {"state": "TERMINATED", "termination_details": details}
    return jobs.Run.from_dict({"run_id": 7, "state": state, "tasks": [task]})


@pytest.mark.parametrize(
    ("case", "platform"),
    [
        (run(None, life_cycle="INTERNAL_ERROR", message="workspace stopped"), True),
        (run("FAILED", code="CLUSTER_ERROR", kind="INTERNAL_ERROR", message="lost"), True),
        (run("FAILED", code="DRIVER_ERROR", kind="INTERNAL_ERROR"), True),
        (run("FAILED", code="CLOUD_FAILURE", kind="CLOUD_FAILURE"), True),
        (run("FAILED", code="RUN_EXECUTION_ERROR", kind="CLIENT_ERROR"), False),
        (run("FAILED"), False),
        (run("TIMEDOUT", code="CANCELED", kind="SUCCESS"), False),
        (run("CANCELED", code="USER_CANCELED", kind="SUCCESS"), False),
        (run("SUCCESS", code="SUCCESS", kind="SUCCESS"), False),
    ],
)
def test_which_ends_are_the_platforms(case: jobs.Run, platform: bool) -> None:
    assert (platform_failure(case) is not None) is platform


def test_the_reason_names_the_task_and_the_message() -> None:
    reason = platform_failure(run(None, life_cycle="INTERNAL_ERROR", message="workspace stopped"))
    assert reason == "task run_pytest: INTERNAL_ERROR: workspace stopped"


# -- end to end --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """``orchestrator local serve`` in a subprocess on a fixed port and state folder."""

    def __init__(self, state: Path, port: int) -> None:
        self.state, self.port = state, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            in_subprocess(
                "local",
                "serve",
                "--port",
                str(self.port),
                "--state-dir",
                str(self.state),
                "--token-env",
                "ORCH_TEST_TOKEN",
                "--cluster-start-delay",
                "0.2",
            ),
            env={**os.environ, "ORCH_TEST_TOKEN": TOKEN},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        # a restart may log first (e.g. that it ended processes a killed server left behind)
        seen = [self.proc.stdout.readline() for _ in range(1)]
        while not seen[-1].startswith("Local workspace on") and seen[-1] and len(seen) < 20:
            seen.append(self.proc.stdout.readline())
        assert seen[-1].startswith("Local workspace on"), seen

    def kill_hard(self) -> list[psutil.Process]:
        """SIGKILL the server; returns the processes it had started (kernels), still alive."""
        assert self.proc is not None
        children = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return children

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> WorkspaceClient:
        return WorkspaceClient(host=self.url, token=TOKEN, auth_type="pat")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path / "serve-state", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_a_workspace_killed_mid_run_is_exit_3_with_the_junit_written(
    project: Path, serve: Serve
) -> None:
    slow_project(project)
    flags = workspace_flags(serve.url, "env:ORCH_TEST_TOKEN")
    build = subprocess.Popen(
        in_subprocess(*command(project, "build", "--build-id", "p1", *flags)),
        env={**os.environ, "ORCH_TEST_TOKEN": TOKEN, "CI": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    leftovers: list[psutil.Process] = []
    try:
        run_id = running_run(serve.client())
        leftovers = serve.kill_hard()
        serve.start()  # same state: the run it had active ends INTERNAL_ERROR
        out, _ = build.communicate(timeout=120)
    finally:
        build.kill()
        for process in leftovers:  # kernels the killed server left (issue 14, item 6)
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
    assert build.returncode == 3, out
    assert "the platform failed, not the tests (exit 3)" in out
    ended = serve.client().jobs.get_run(run_id)
    assert ended.state is not None
    assert ended.state.life_cycle_state == jobs.RunLifeCycleState.INTERNAL_ERROR
    root = junit(project, "p1")
    messages = [f.get("message", "") for f in root.iter("failure")]
    messages += [e.get("message", "") for e in root.iter("error")]
    assert messages, ET.tostring(root, encoding="unicode")
    assert any("the platform failed, not the notebook" in m for m in messages), messages
