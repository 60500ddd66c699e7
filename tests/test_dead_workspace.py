"""A workspace that dies mid-run and never comes back ends the build in about
``timeouts.connect``: one deadline across every request, then one try each for the cancel and
the clean, exit 3, and a line naming what is left for ``orchestrator cleanup``. A SIGTERM while
the build waits for the silent workspace takes effect at once. (How long each takes is timed by
``python -m bench.dead_workspace``, not asserted here.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.buildkit import command, in_subprocess, workspace_flags
from tests.conftest import TOKEN
from tests.serving import Serve
from tests.test_build import slow_project
from tests.waiting import running_run

pytestmark = pytest.mark.slow


def start_build(project: Path, serve: Serve, *extra: str) -> subprocess.Popen[str]:
    slow_project(project)
    flags = workspace_flags(serve.url, "env:ORCH_TEST_TOKEN")
    argv = command(project, "build", "--build-id", "d1", *flags, *extra)
    return subprocess.Popen(
        in_subprocess(*argv),
        env={**os.environ, "ORCH_TEST_TOKEN": TOKEN, "CI": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_workspace(serve: Serve) -> None:
    import psutil

    for process in serve.kill_hard():  # its kernels too: nothing answers any more
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def test_a_workspace_gone_mid_run_ends_the_build_with_exit_3_naming_what_is_left(
    project: Path, serve: Serve
) -> None:
    build = start_build(project, serve, "--set", "timeouts.connect=5s")
    try:
        run_id = running_run(serve.client())
        kill_workspace(serve)
        out, _ = build.communicate(timeout=120)  # a hang guard, not a timing
    finally:
        build.kill()
    assert build.returncode == 3, out
    assert f"orchestrator: error: workspace {serve.url} did not answer for 5 s" in out
    left = next(line for line in out.splitlines() if "left for `orchestrator cleanup`" in line)
    assert f"run {run_id} (may still be running)" in left, out
    assert "workspace folder /Users/" in left and "is not answering" in left
    # the storage prefix (this machine's folder) was cleaned: only the workspace's is left
    assert not (project / ".orchestrator" / "storage" / "sample" / "d1").exists()


def test_a_sigterm_while_the_workspace_is_silent_takes_effect_at_once(
    project: Path, serve: Serve
) -> None:
    build = start_build(project, serve, "--set", "timeouts.connect=600s")
    try:
        running_run(serve.client())
        kill_workspace(serve)
        assert build.stdout is not None
        for line in build.stdout:  # the build has noticed: it retries the silent workspace
            if "retrying" in line:
                break
        build.send_signal(signal.SIGTERM)
        out, _ = build.communicate(timeout=60)  # a hang guard: 600 s would be the deadline
    finally:
        build.kill()
    assert build.returncode == 143, out
    assert "cancelled by SIGTERM" in out
    assert "left for `orchestrator cleanup`" in out
