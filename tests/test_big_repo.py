"""A repo of 200 notebooks builds on the local workspace with a console a person can read: two
broken notebooks fail the build, are named first, and the whole output stays under 120
lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)


def test_a_200_notebook_build_with_2_broken_fits_a_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "big"
    (root / "notebooks").mkdir(parents=True)
    for n in range(200):
        body = "assert 1 + 1 == 3, 'broken on purpose'" if n in (57, 142) else f"print({n})"
        (root / "notebooks" / f"n{n:03d}.py").write_text(f"# Databricks notebook source\n{body}\n")
    monkeypatch.chdir(root)
    for name in ("TF_BUILD", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    assert main(["init", "--all-notebooks"]) == 0
    capsys.readouterr()
    code = main(["build", "--repo-name", "big", "--build-id", "b1"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert code == 1, out
    assert len(lines) < 120, out
    table = out.index("Test results: FAILED: 2 failed, 198 passed of 200 tests")
    failures = [line for line in lines if line.startswith("FAILURE ")]
    assert failures == [
        "FAILURE n057 > n057 (task ended without test results)",
        "FAILURE n142 > n142 (task ended without test results)",
    ]
    assert out.index("n057 ") > table and "broken on purpose" in out
    assert "(198 passing suites)" in out
