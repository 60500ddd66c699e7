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
        ("orchestrator/adapters/keyvault.py", "import orchestrator.build.flow", "Layers"),
        ("orchestrator/local/store.py", "import orchestrator.errors", "The local workspace"),
        ("orchestrator/cleanup/policy.py", "import orchestrator.local", "Only services"),
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
    target.write_text(target.read_text() + f"\n{line}  # deliberately wrong\n")
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
