"""Helpers for tests that run builds: a copy of the sample project, the command lines of a
build and the flags aiming it at a test server (both from bench/kit/sample.py, which the
benchmarks share), reading the merged JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from bench.kit.sample import command, copy_sample_project, in_subprocess, workspace_flags
from orchestrator.cli import main
from orchestrator.local.server import LocalWorkspace

__all__ = [
    "build",
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


def build(root: Path, *args: str) -> int:
    return main(command(root, "build", *args))


def junit(root: Path, build_id: str) -> ET.Element:
    return ET.parse(root / "test-results" / f"TEST-sample-{build_id}.xml").getroot()


def suites(root: ET.Element) -> dict[str, ET.Element]:
    return {s.get("name", ""): s for s in root.iter("testsuite")}
