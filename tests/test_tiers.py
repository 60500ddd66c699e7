"""The suite's own rules: in CI a missing tool fails instead of skipping, and the fast tier
starts no real kernel, Azurite or browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiers import ProcessWatch, heavy_process
from tests.tools import in_ci, require

REPO = Path(__file__).resolve().parents[1]
R_TEST = (
    "tests/local/test_shim_notebook_run.py"
    "::test_r_notebook_run_returns_exit_values_and_raises_on_failure"
)


@pytest.mark.parametrize(
    ("value", "ci"),
    [("true", True), ("1", True), ("yes", True), ("", False), ("false", False), ("0", False)],
)
def test_ci_false_is_not_ci(monkeypatch: pytest.MonkeyPatch, value: str, ci: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_require_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    try:
        require("R is missing")
    except pytest.skip.Exception:  # caught here, or the test itself would be skipped
        pytest.fail("require() skipped in CI")
    except pytest.fail.Exception as failed:
        assert "CI cannot run this test: R is missing" in str(failed)
    else:
        pytest.fail("require() let CI run without R")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="R is missing"):
        require("R is missing")
    require(None)  # nothing missing: nothing happens


def _pytest_without_r(ci: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The suite's R test, on a PATH with no R (a machine where R was not installed)."""
    bare = tmp_path / "bin"
    bare.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTHONPATH")}
    env.update(CI=ci, PATH=str(bare))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", R_TEST],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_in_ci_a_machine_without_r_fails_the_suite_instead_of_skipping(tmp_path: Path) -> None:
    done = _pytest_without_r("true", tmp_path)
    assert done.returncode != 0, done.stdout
    assert "CI=true but R is not installed" in done.stdout + done.stderr


def test_outside_ci_a_machine_without_r_skips_the_r_test(tmp_path: Path) -> None:
    done = _pytest_without_r("false", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "R is not installed" in done.stdout


@pytest.mark.slow
def test_the_watch_sees_a_kernel_a_test_starts(tmp_path: Path) -> None:
    assert heavy_process(["python", "-m", "ipykernel_launcher", "-f", "x.json"]) == (
        "a Python kernel"
    )
    assert heavy_process(["python", "-m", "orchestrator.local.runtime.watchdog"]) is None
    watch = ProcessWatch()
    try:
        fake_kernel = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(2)", "ipykernel_launcher"]
        )
        try:
            watch.sample()
            assert watch.take() == {"a Python kernel"}
            assert watch.take() == set()  # reported once
        finally:
            fake_kernel.kill()
            fake_kernel.wait()
    finally:
        watch.close()
