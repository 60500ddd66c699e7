"""The chaos suite's short form (bench/chaos.py): a few builds against a faulty local workspace
(429s, 503s, dropped connections, latency), one of them losing its workspace mid-run (SIGKILL
and restart). Every check of the table must hold: exit codes as expected, one run per build,
no run left active, nothing left after a final cleanup, no orphan process, no secret in any
output. The long form is ``python -m bench.chaos`` (50 builds, 4 at a time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.kit.sample import REPO

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)


@pytest.mark.timeout(900)  # about 2 minutes alone; more beside other CPU-heavy tests
def test_a_short_chaos_run_passes_every_check(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "bench.chaos", "--builds", "2", "--parallel", "2"]
    argv += ["--kill-every", "2", "--scratch", str(tmp_path / "chaos")]
    result = subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    table = result.stdout + result.stderr
    assert result.returncode == 0, table
    for check in (
        "runs started per build",
        "runs left active",
        "folders left after cleanup",
        "orphan processes",
        "secrets found in any output",
    ):
        assert f"| {check}" in table, table
    assert "| NO |" not in table, table
    assert "1 workspace kills" in table, table
