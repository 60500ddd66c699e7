"""Builds do not share what one of them could change under another: each has a job of its own
(two concurrent builds with different timeouts each run with their own settings), and its
build root is one only the build's identity can write (restricted at first use; a root others
can write is named in a warning, by `plan` for a root under /Shared)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.local.server import LocalWorkspace
from orchestrator.local.state.records import DEFAULT_USER_NAME
from tests.buildkit import BUILD_ROOT, build, command, in_subprocess, make_project, remote_args
from tests.conftest import TOKEN, sdk_client
from tests.test_build import slow_project
from tests.waiting import running_run


def job_settings(server: LocalWorkspace, name: str) -> dict[str, Any]:
    w = sdk_client(server)
    (job,) = [j for j in w.jobs.list() if j.settings and j.settings.name == name]
    assert job.job_id is not None
    settings = w.jobs.get(job.job_id).settings
    assert settings is not None
    return settings.as_dict()


def task_timeouts(settings: dict[str, Any]) -> set[int]:
    return {int(t.get("timeout_seconds", 0)) for t in settings["tasks"]}


@pytest.mark.slow
def test_two_concurrent_builds_with_different_timeouts_keep_their_own(
    tmp_path: Path, server: LocalWorkspace
) -> None:
    slow = make_project(tmp_path / "slow")
    slow_project(slow)
    env = {**os.environ, "ORCH_TEST_TOKEN": TOKEN, "CI": "true"}
    argv = command(slow, "build", "--build-id", "t600", "--timeout", "600s", *remote_args(server))
    first = subprocess.Popen(
        in_subprocess(*argv), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        running = running_run(sdk_client(server))
        before = job_settings(server, "build-sample t600")
        assert task_timeouts(before) == {600}

        fast = make_project(tmp_path / "fast")
        assert build(fast, "--build-id", "t60", "--timeout", "60s", *remote_args(server)) == 0

        assert task_timeouts(job_settings(server, "build-sample t60")) == {60}
        assert job_settings(server, "build-sample t600") == before  # untouched by the other
        run = sdk_client(server).jobs.get_run(running)
        assert run.state is not None and run.state.result_state is None  # still running
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 143, out


@pytest.mark.slow
def test_the_build_root_is_restricted_at_first_use(
    project: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(project, "--build-id", "r1", *remote_args(server)) == 0
    out = capsys.readouterr().out
    assert f"{BUILD_ROOT}: created; only {DEFAULT_USER_NAME} (and the workspace admins)" in out
    assert "warning" not in out
    w = sdk_client(server)
    status = w.workspace.get_status(BUILD_ROOT)
    acl = w.api_client.do("GET", f"/api/2.0/permissions/directories/{status.object_id}")
    direct = [
        (entry.get("user_name") or entry.get("group_name"), p["permission_level"])
        for entry in acl["access_control_list"]
        for p in entry["all_permissions"]
        if not p["inherited"]
    ]
    assert direct == [(DEFAULT_USER_NAME, "CAN_MANAGE")]
    # the next build finds it made: nothing to say
    assert build(project, "--build-id", "r2", *remote_args(server)) == 0
    assert ": created; only" not in capsys.readouterr().out


@pytest.mark.slow
def test_a_build_root_others_can_write_is_named_by_plan_and_every_build(
    project: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = ["--set", "build_root=/Shared/ci-builds"]
    assert main(command(project, "plan", "--build-id", "p1", *shared, *remote_args(server))) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["job"]["name"] == "build-sample p1"
    assert "build_root /Shared/ci-builds: every workspace user can change" in captured.err
    assert build(project, "--build-id", "s1", *shared, *remote_args(server)) == 0
    out = capsys.readouterr().out
    assert "warning: /Shared/ci-builds can be changed by users (CAN_MANAGE, inherited from" in out
