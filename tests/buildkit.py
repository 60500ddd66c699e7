"""Helpers for tests that run builds: a copy of the sample project, the command lines of a
build and the flags aiming it at a test server (both from bench/kit/sample.py, which the
benchmarks share), reading the merged JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bench.kit.sample import command, copy_sample_project, in_subprocess, workspace_flags
from orchestrator.cli import main
from orchestrator.local.server import LocalWorkspace
from orchestrator.local.state.records import DEFAULT_USER_NAME

#: where the sample's builds go on a local workspace: ``~/orchestrator-builds`` of its one user
BUILD_ROOT = f"/Users/{DEFAULT_USER_NAME}/orchestrator-builds"
#: what a local workspace holds from its first start: /Shared, /Users and the user's home
FIRST_START = frozenset({"/Shared", "/Users", f"/Users/{DEFAULT_USER_NAME}"})

__all__ = [
    "BUILD_ROOT",
    "FIRST_START",
    "build",
    "build_runs",
    "command",
    "in_subprocess",
    "junit",
    "make_project",
    "remote_args",
    "suites",
    "workspace_flags",
]


def make_project(tmp_path: Path) -> Path:
    return copy_sample_project(tmp_path / "proj")


def remote_args(ws: LocalWorkspace) -> list[str]:
    """Build flags pointing at a workspace that outlives the build, to check it afterwards."""
    return workspace_flags(ws.url, "env:ORCH_TEST_TOKEN")


def build_runs(client: Any, *, active_only: bool = False) -> list[Any]:
    """The runs of builds' jobs (``JOB_RUN``): not the ephemeral runs a notebook starts with
    ``dbutils.notebook.run`` (``WORKFLOW_RUN``, as the sample's Spark test does)."""
    from databricks.sdk.service.jobs import RunType

    return list(client.jobs.list_runs(run_type=RunType.JOB_RUN, active_only=active_only))


def build(root: Path, *args: str) -> int:
    return main(command(root, "build", *args))


def junit(root: Path, build_id: str) -> ET.Element:
    return ET.parse(root / "test-results" / f"TEST-sample-{build_id}.xml").getroot()


def suites(root: ET.Element) -> dict[str, ET.Element]:
    return {s.get("name", ""): s for s in root.iter("testsuite")}
