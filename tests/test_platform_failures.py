"""A run the platform broke (INTERNAL_ERROR, a lost cluster or driver, a cloud failure) is exit 3,
not a test failure (exit 1); its synthesized test cases are still written and say it was the
platform. End to end: the workspace (``orchestrator local serve``) is SIGKILLed in the middle of
a run and restarted on the same state, which ends the run INTERNAL_ERROR."""

from __future__ import annotations

import contextlib
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import psutil
import pytest
from databricks.sdk.service import jobs

from orchestrator.adapters.databricks import RunView, parse_run, platform_failure
from tests.buildkit import command, in_subprocess, junit, workspace_flags
from tests.conftest import TOKEN
from tests.serving import Serve
from tests.test_build import slow_project
from tests.waiting import running_run


def task(
    status: dict[str, Any] | None = None, state: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A task run of ``runs/get`` (2.2) as the API reference shows it."""
    item: dict[str, Any] = {"task_key": "run_pytest", "run_id": 71}
    if status is not None:
        item["status"] = status
    if state is not None:
        item["state"] = state
    return item


def ended(code: str, kind: str, message: str = "") -> dict[str, Any]:
    details = {"code": code, "type": kind, "message": message}
    return {"state": "TERMINATED", "termination_details": details}


def run_of(*tasks: dict[str, Any], **top: Any) -> RunView:
    return parse_run({"run_id": 7, "run_name": "build-r b", "tasks": list(tasks), **top})


@pytest.mark.parametrize(
    ("item", "platform"),
    [
        # 2.1 only: the life cycle says it
        (task(state={"life_cycle_state": "INTERNAL_ERROR", "state_message": "stopped"}), True),
        (task(state={"life_cycle_state": "TERMINATED", "result_state": "FAILED"}), False),
        # 2.2 only (no ``state``): every documented platform code, and the types
        (task(ended("CLUSTER_ERROR", "INTERNAL_ERROR", "lost")), True),
        (task(ended("DRIVER_ERROR", "INTERNAL_ERROR")), True),
        (task(ended("CLOUD_FAILURE", "CLOUD_FAILURE")), True),
        (task(ended("MAX_JOB_QUEUE_SIZE_EXCEEDED", "CLIENT_ERROR")), True),
        (task(ended("STORAGE_ACCESS_ERROR", "CLIENT_ERROR")), True),
        (task(ended("WORKSPACE_RUN_LIMIT_EXCEEDED", "CLIENT_ERROR")), True),
        (task(ended("MAX_SPARK_CONTEXTS_EXCEEDED", "CLIENT_ERROR")), True),
        (task(ended("REPOSITORY_CHECKOUT_FAILED", "CLIENT_ERROR")), True),
        # documented, and unknown to the SDK's enum: kept as the string sent
        (task(ended("CLUSTER_TERMINATED_BY_USER", "CLIENT_ERROR")), True),
        # a code nobody knows yet: its type decides
        (task(ended("SOMETHING_NEW", "INTERNAL_ERROR")), True),
        (task(ended("SOMETHING_NEW", "CLIENT_ERROR")), False),
        # the notebook's own failures and ends
        (task(ended("RUN_EXECUTION_ERROR", "CLIENT_ERROR")), False),
        (task(ended("LIBRARY_INSTALLATION_ERROR", "CLIENT_ERROR")), False),
        (task(ended("USER_CANCELED", "SUCCESS")), False),
        (task(ended("SUCCESS", "SUCCESS")), False),
    ],
)
def test_which_ends_are_the_platforms(item: dict[str, Any], platform: bool) -> None:
    assert (platform_failure(run_of(item)) is not None) is platform


def test_status_is_read_before_state_and_without_it() -> None:
    only_status = run_of(task(ended("SUCCESS", "SUCCESS")))
    (view,) = only_status.tasks
    assert view.end.over and view.end.result == "SUCCESS"
    assert run_of(task(ended("USER_CANCELED", "SUCCESS"))).tasks[0].end.result == "CANCELED"
    assert run_of(task(ended("SOMETHING_NEW", "CLIENT_ERROR"))).tasks[0].end.result == "FAILED"
    # a 2.1 state that lags behind the status: the status wins
    both = task(ended("SUCCESS", "SUCCESS"), {"life_cycle_state": "RUNNING"})
    assert run_of(both).tasks[0].end.over
    running = run_of(task({"state": "RUNNING"}))
    assert not running.tasks[0].end.over and running.tasks[0].end.result is None
    unknown = run_of(task(ended("SOMETHING_NEW", "CLIENT_ERROR", "new")))
    assert unknown.tasks[0].end.code == "SOMETHING_NEW"
    assert unknown.tasks[0].end.message == "new"


def test_the_reason_names_the_task_and_the_message() -> None:
    internal = task(state={"life_cycle_state": "INTERNAL_ERROR", "state_message": "stopped"})
    assert platform_failure(run_of(internal)) == "task run_pytest: INTERNAL_ERROR: stopped"
    lost = task(ended("CLUSTER_TERMINATED_BY_USER", "CLIENT_ERROR", "restarted"))
    assert platform_failure(run_of(lost)) == (
        "task run_pytest: CLUSTER_TERMINATED_BY_USER: restarted"
    )
    top = run_of(status=ended("CLOUD_FAILURE", "CLOUD_FAILURE", "quota"))
    assert platform_failure(top) == "run 7: CLOUD_FAILURE: quota"


# -- end to end --------------------------------------------------------------------------------


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
    assert "the platform failed, not the notebooks (exit 3; a retry may pass)" in out
    killed = serve.client().jobs.get_run(run_id)
    assert killed.state is not None
    assert killed.state.life_cycle_state == jobs.RunLifeCycleState.INTERNAL_ERROR
    root = junit(project, "p1")
    messages = [f.get("message", "") for f in root.iter("failure")]
    messages += [e.get("message", "") for e in root.iter("error")]
    assert messages, ET.tostring(root, encoding="unicode")
    assert any("the platform failed, not the notebook" in m for m in messages), messages
