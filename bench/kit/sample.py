"""The sample project as builds use it: a fresh copy of it, and the command lines that aim
``orchestrator`` at it and at a workspace.

Shared by the benchmarks (bench/demo.py, bench/local_speed.py...) and the tests (through
tests/buildkit.py): the tests import ``bench.kit``, never the other way round. It imports the
standard library and the local workspace's cluster id only, so a benchmark pays no
orchestrator import for it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from orchestrator.local.runtime.spark_locations import DEFAULT_CLUSTER_ID

__all__ = [
    "CLUSTER_ID",
    "REPO",
    "REPO_NAME",
    "command",
    "copy_sample_project",
    "in_subprocess",
    "workspace_flags",
]

REPO = Path(__file__).resolve().parents[2]
REPO_NAME = "sample"
CLUSTER_ID = DEFAULT_CLUSTER_ID  # the cluster every local workspace has


def copy_sample_project(target: Path) -> Path:
    """A copy of the sample project (notebooks, model, config, job template) at ``target``,
    replacing whatever is there."""
    if target.exists():
        shutil.rmtree(target)
    for name in ("databricks", "models"):
        shutil.copytree(REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("orchestrator.yml", "job-template.json"):
        shutil.copy(REPO / name, target / name)
    return target


def command(project: Path, name: str, *args: str, repo_name: str | None = REPO_NAME) -> list[str]:
    """``orchestrator <name>`` (``build``, ``plan`` or a step) for the project's config and
    ``repo_name`` (none: left to the CLI), then ``args``; without the program, as
    ``cli.main`` takes it."""
    repo = ["--repo-name", repo_name] if repo_name is not None else []
    return [name, "--config", str(project / "orchestrator.yml"), *repo, *args]


def workspace_flags(host: str, token: str) -> list[str]:
    """Flags aiming a build at the workspace at ``host``; ``token`` is a config reference
    (``env:NAME``, ``keyvault:NAME``), so no token value is on the command line."""
    return [
        "--set",
        f"workspace.host={host}",
        "--set",
        f"workspace.token={token}",
        "--set",
        "workspace.auth_type=pat",
        "--set",
        f"cluster_id={CLUSTER_ID}",
    ]


def in_subprocess(*args: str) -> list[str]:
    """The argv running ``orchestrator args...`` in a fresh interpreter, as CI runs it."""
    return [sys.executable, "-m", "orchestrator", *args]
