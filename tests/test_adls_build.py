"""``orchestrator build`` with its storage in ADLS Gen2 (Azurite): models, test scripts and the
shared test data go up through ``AdlsStorage``, the JUnit XML comes back down through it, and
the build prefix is deleted at the end. A second build with unchanged data uploads no data.

The local workspace's notebooks cannot open ``abfss://`` paths (there is no mount or Spark
here), so the job runs each test notebook through a small shim notebook that plays the
cluster's side (bench/kit/azurite.py, ``SHIM_NOTEBOOK``): it copies the inputs from Azurite, runs
the real notebook, and writes the results back to Azurite. Everything the orchestrator itself
does goes to and from Azurite.

Also here: the content-addressed test data on a local folder, and what ``orchestrator plan``
shows for it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bench.kit.azurite import Azurite, azurite_build_flags, use_abfss_shim
from orchestrator.cli import main
from orchestrator.layout import data_prefix
from orchestrator.storage.base import tree_digest
from orchestrator.storage.folder import LocalFolderStorage
from tests.buildkit import build, command, junit, suites


def blob_names(azurite: Azurite, container: str) -> list[str]:
    from azure.storage.blob import ContainerClient

    with ContainerClient.from_connection_string(azurite.connection_string, container) as client:
        return sorted(b.name for b in client.list_blobs())


@pytest.mark.slow
def test_a_build_stores_artifacts_in_azurite_and_gets_its_results_back(
    project: Path,
    azurite: Azurite,
    container: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_abfss_shim(project)
    monkeypatch.setenv("ORCH_TEST_AZURITE", azurite.connection_string)
    flags = azurite_build_flags(container)
    digest = tree_digest(project / "databricks" / "tests" / "data")

    assert build(project, "--build-id", "z1", *flags) == 0, capsys.readouterr()
    first = capsys.readouterr().out
    got = suites(junit(project, "z1"))
    assert got["run_pytest"].get("tests") == "8" and got["run_pytest"].get("failures") == "0"
    assert got["run_testthat"].get("tests") == "10"
    assert f"abfss://{container}@devstoreaccount1.dfs.core.windows.net/ci/sample/z1" in first
    assert f"_data/{digest}/ (1 new files, shared)" in first
    # the build prefix is gone; the shared, content-addressed test data stays
    assert blob_names(azurite, container) == [f"ci/_data/{digest}/customers.csv"]
    assert not (project / ".orchestrator" / "storage").exists()

    assert build(project, "--build-id", "z2", *flags) == 0
    second = capsys.readouterr().out
    assert f"_data/{digest}/ (0 new files, shared)" in second
    assert suites(junit(project, "z2"))["run_testthat"].get("tests") == "10"


def test_plan_points_data_dir_at_the_shared_copy(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = "abfss://builds@acct01.dfs.core.windows.net/ci"
    plan = command(project, "plan", "--set", f"storage.root={root}")
    code = main([*plan, "--build-id", "p1"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    digest = tree_digest(project / "databricks" / "tests" / "data")
    parameters = doc["parameters"]
    assert parameters["data_dir"] == f"{root}/_data/{digest}"
    assert parameters["tests_dir"] == f"{root}/sample/p1/tests"
    shared = [s for s in doc["storage"] if s.get("shared")]
    assert shared == [
        {"source": "databricks/tests/data", "target": f"{root}/_data/{digest}", "shared": True}
    ]
    assert doc["build"]["data"] == f"_data/{digest}"
    # through a mount, the notebooks see the same copy under the mount
    mount = "/dbfs/mnt/builds"
    main([*plan, "--build-id", "p2", "--set", f"storage.cluster_path={mount}"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["parameters"]["data_dir"] == f"{mount}/_data/{digest}"
    (task, *_) = doc["job"]["tasks"]
    assert task["notebook_task"]["base_parameters"]["data_dir"] == f"{mount}/_data/{digest}"


def test_tree_digest_names_content_and_paths_not_timestamps(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "x").mkdir(parents=True)
        (root / "x" / "one.csv").write_text("1\n")
        (root / "two.csv").write_text("2\n")
    os.utime(b / "two.csv", (0, 0))
    (b / "__pycache__").mkdir()
    (b / "__pycache__" / "c.pyc").write_bytes(b"ignored")
    assert tree_digest(a) == tree_digest(b)
    (b / "two.csv").write_text("3\n")
    assert tree_digest(a) != tree_digest(b)
    (b / "two.csv").write_text("2\n")
    (b / "x" / "one.csv").rename(b / "one.csv")
    assert tree_digest(a) != tree_digest(b)
    assert len(tree_digest(a)) == 64 and data_prefix("ab") == "_data/ab"


def test_local_folder_stores_test_data_once_read_only_and_never_overwrites(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("a\n")
    (data / "sub" / "b.csv").write_text("b\n")
    storage = LocalFolderStorage(tmp_path / "store")
    prefix = data_prefix(tree_digest(data))
    assert storage.upload_immutable(data, prefix) == 2
    assert storage.upload_immutable(data, prefix) == 0
    stored = tmp_path / "store" / prefix / "a.csv"
    assert stored.read_text() == "a\n"
    assert not stored.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    (tmp_path / "store" / prefix / "sub" / "b.csv").unlink()
    assert storage.upload_immutable(data, prefix) == 1
    assert storage.list_children("_data") == [prefix.split("/")[1]]
    assert [p.name for p in stored.parent.iterdir() if p.name.startswith(".")] == []
    assert storage.delete_prefix(prefix) is True  # cleanup can still remove it
