"""``local.dbfs``: data a team's infrastructure puts in DBFS on a real workspace is seeded into
the local workspace's DBFS from the repo at build start, so notebooks that read it run
unchanged; ``plan`` shows the mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main

NOTEBOOK = """# Databricks notebook source
import csv

with open("/dbfs/src/customers.csv") as f:
    rows = list(csv.DictReader(f))
assert [r["id"] for r in rows] == ["1", "2"], rows

# COMMAND ----------

assert dbutils.fs.head("dbfs:/src/nested/note.txt") == "hello"

# COMMAND ----------

# a Unity Catalog volume seeded the same way, written and read back
import pandas as pd

landing = "/Volumes/main/default/landing"
assert pd.read_csv(f"{landing}/orders.csv")["qty"].sum() == 5
pd.DataFrame({"qty": [7]}).to_csv(f"{landing}/out.csv", index=False)
assert pd.read_csv(f"{landing}/out.csv")["qty"].tolist() == [7]
"""


def repo(root: Path) -> Path:
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "read_src.py").write_text(NOTEBOOK)
    (root / "infra" / "files" / "nested").mkdir(parents=True)
    (root / "infra" / "files" / "customers.csv").write_text("id,name\n1,a\n2,b\n")
    (root / "infra" / "files" / "nested" / "note.txt").write_text("hello")
    (root / "infra" / "volume").mkdir(parents=True)
    (root / "infra" / "volume" / "orders.csv").write_text("qty\n2\n3\n")
    (root / "orchestrator.yml").write_text(
        "version: 1\ndefaults:\n  local:\n    dbfs:\n      /src: infra/files\n"
        "      /Volumes/main/default/landing: infra/volume\n"
    )
    task = {
        "task_key": "read_src",
        "existing_cluster_id": "${cluster_id}",
        "notebook_task": {"notebook_path": "notebooks/read_src"},
    }
    (root / "job-template.json").write_text(json.dumps({"name": "${job_name}", "tasks": [task]}))
    return root


@pytest.mark.slow
def test_seeded_dbfs_files_are_read_by_notebooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo(tmp_path / "seeded")
    monkeypatch.chdir(root)
    assert main(["plan", "--repo-name", "seeded"]) == 0
    assert json.loads(capsys.readouterr().out)["local_dbfs"] == {
        "/src": "infra/files",
        "/Volumes/main/default/landing": "infra/volume",
    }
    code = main(["build", "--repo-name", "seeded", "--build-id", "s1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "local.dbfs: infra/files -> dbfs:/src (2 files)" in out
    assert "local.dbfs: infra/volume -> dbfs:/Volumes/main/default/landing (1 files)" in out


def test_a_missing_seed_folder_is_exit_2_at_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo(tmp_path / "missing")
    (root / "orchestrator.yml").write_text(
        "version: 1\ndefaults:\n  local:\n    dbfs:\n      dbfs:/src: infra/nope\n"
    )
    monkeypatch.chdir(root)
    assert main(["plan", "--repo-name", "missing"]) == 2
    assert "local.dbfs: not a folder: /src: infra/nope" in capsys.readouterr().err
