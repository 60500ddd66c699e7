"""Helpers for tests that run builds: a copy of the sample project, flags aiming a build at a
test server, reading the merged JUnit."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from orchestrator.cli import main
from orchestrator.local import LocalWorkspace

REPO = Path(__file__).resolve().parents[1]


def make_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for name in ("databricks", "models"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("orchestrator.yml", "job-template.json"):
        shutil.copy(REPO / name, root / name)
    return root


def remote_args(ws: LocalWorkspace) -> list[str]:
    """Build flags pointing at a workspace that outlives the build, to check it afterwards."""
    return [
        "--set",
        f"workspace.host={ws.url}",
        "--set",
        "workspace.token=env:ORCH_TEST_TOKEN",
        "--set",
        "workspace.auth_type=pat",
        "--set",
        "cluster_id=0000-000000-local",
    ]


def build(root: Path, *args: str) -> int:
    return main(
        ["build", "--config", str(root / "orchestrator.yml"), "--repo-name", "sample", *args]
    )


def junit(root: Path, build_id: str) -> ET.Element:
    return ET.parse(root / "test-results" / f"TEST-sample-{build_id}.xml").getroot()


def suites(root: ET.Element) -> dict[str, ET.Element]:
    return {s.get("name", ""): s for s in root.iter("testsuite")}
