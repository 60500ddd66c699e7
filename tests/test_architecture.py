"""The package's architecture, as CI enforces it: the import contracts in pyproject.toml
(``lint-imports``: layers one way, databricks-sdk only in the adapter and the local workspace,
the local workspace self-contained) and no import cycle anywhere in the package or the benches.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
        check=False,
    )


def test_the_import_contracts_hold() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("orchestrator/build/plan.py", "import databricks.sdk", "databricks-sdk is imported"),
        ("orchestrator/__main__.py", "import databricks.sdk", "databricks-sdk is imported"),
        # a module nobody listed anywhere: the contracts cover it by default
        ("orchestrator/scaffold/brand_new.py", "import databricks.sdk", "databricks-sdk is"),
        ("orchestrator/adapters/keyvault.py", "import orchestrator.build.flow", "Layers"),
        ("orchestrator/local/state/store.py", "import orchestrator.errors", "The local workspace"),
        ("orchestrator/cleanup/policy.py", "import orchestrator.local", "Only services"),
        ("orchestrator/scaffold/detect.py", "import orchestrator.local", "Only services"),
        (
            "orchestrator/local/kernel/dbutils.py",
            "import orchestrator.local.runtime.launch",
            "The kernel package imports nothing",
        ),
        (
            "orchestrator/local/kernel/brand_new.py",
            "from orchestrator.local.state import store",
            "The kernel package imports nothing",
        ),
        (
            "orchestrator/local/state/store.py",
            "import orchestrator.local.api.routing",
            "The local rooms run one way",
        ),
        # a new room must be placed among the others
        ("orchestrator/local/newroom/__init__.py", "import os", "The local rooms run one way"),
    ],
)
def test_a_wrong_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    shutil.copytree(
        REPO / "orchestrator",
        tmp_path / "orchestrator",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.parent.mkdir(parents=True, exist_ok=True)
    text = target.read_text() if target.exists() else '"""A module added later."""\n'
    target.write_text(text + f"\n{line}  # deliberately wrong\n")
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert f"{broken}" in done.stdout and "BROKEN" in done.stdout, done.stdout


@pytest.mark.parametrize("package", ["orchestrator", "bench"])
def test_no_package_has_an_import_cycle(package: str) -> None:
    # grimp sees every import: module level, in functions and under TYPE_CHECKING
    graph = grimp.build_graph(package)
    packages = [m for m in graph.modules if graph.find_children(m)]
    cycles = {p: graph.nominate_cycle_breakers(p) for p in packages}
    assert {p: b for p, b in cycles.items() if b} == {}


#: names two modules may share because they mean the same thing in their packages
_SHARED_NAMES = {"command": "each command package's entry point (cleanup, scaffold)"}


def test_no_two_modules_share_a_name() -> None:
    # modules and packages alike: `orchestrator.local.jobs` and a `jobs.py` elsewhere would be
    # two things called "jobs"
    names: dict[str, list[str]] = {}
    for path in (REPO / "orchestrator").rglob("*"):
        if "__pycache__" in path.parts or path.name == "__init__.py":
            continue
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
            names.setdefault(path.stem, []).append(str(path.relative_to(REPO)))
    shared = {n: sorted(p) for n, p in names.items() if len(p) > 1 and n not in _SHARED_NAMES}
    assert shared == {}


def test_the_local_workspace_has_at_most_eight_entries_at_its_top() -> None:
    local = REPO / "orchestrator" / "local"
    entries = [p.name for p in local.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 8, sorted(entries)
