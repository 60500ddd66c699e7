"""Runtime profiles: a cluster's ``spark_version`` picks the Python environment its notebooks
run in, which holds the runtime's libraries and none of the orchestrator's own."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.local.runtime.executor import execute_notebook
from orchestrator.local.runtime.launch import _kernel_only_path, kernel_python
from orchestrator.local.runtime.profile_table import DOC, render
from orchestrator.local.runtime.python_envs import (
    PROFILE_DIR,
    environment_for,
    locked_environments,
    select_environments,
)
from orchestrator.local.runtime.spark_versions import (
    DEFAULT_SPARK_VERSION,
    PROFILES,
    environment_profile,
)
from tests.local.runtime_helpers import Workspace, source


def _locked(version: str) -> dict[str, str]:
    text = (PROFILE_DIR / f"{version}.txt").read_text()
    return {
        re.sub(r"[-_.]+", "-", name).lower(): pinned
        for name, pinned in re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)", text, re.MULTILINE)
    }


def test_the_profile_page_is_generated_from_the_data() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/runtime-profiles.md is stale: python -m orchestrator.local.runtime.profile_table "
        "--write"
    )


@pytest.mark.parametrize("version", sorted({p.version for p in PROFILES if p.locked}))
def test_every_library_of_a_profile_is_in_its_lock(version: str) -> None:
    """A line added to ``<version>.in`` without ``.ci/lock-runtimes`` is caught here."""
    locked = _locked(version)
    wanted = re.findall(
        r"^([A-Za-z0-9][\w.-]*)", (PROFILE_DIR / f"{version}.in").read_text(), re.MULTILINE
    )
    missing = [n for n in wanted if re.sub(r"[-_.]+", "-", n).lower() not in locked]
    assert not missing
    # the kernel itself, and the Spark client every kernel makes ``spark`` with
    assert {"ipykernel", "pyspark-client"} <= locked.keys()
    # and none of the orchestrator's own dependencies that the runtime does not list
    absent = {"junitparser", "pysail", "azure-identity", "azure-keyvault-secrets", "orchestrator"}
    assert not absent & locked.keys()


@pytest.mark.parametrize("key", [DEFAULT_SPARK_VERSION, "16.4.x-scala2.12", "16.4.x-scala2.13"])
def test_a_locked_profile_is_its_own_environment(key: str) -> None:
    chosen, note = environment_profile(key)
    assert chosen.key == key
    assert note is None


def test_the_locked_profiles_differ_in_their_libraries() -> None:
    """16.4 is a library set of its own (its release notes'), not 15.4's again."""
    old, new = _locked("15.4"), _locked("16.4")
    assert (old["numpy"], new["numpy"]) == ("1.23.5", "1.26.4")
    assert (old["databricks-sdk"], new["databricks-sdk"]) == ("0.20.0", "0.30.0")
    assert (old["scikit-learn"], new["scikit-learn"]) == ("1.3.0", "1.4.2")


def test_a_profile_without_libraries_takes_the_nearest_and_says_so() -> None:
    chosen, note = environment_profile("17.3.x-scala2.13")
    assert chosen.version == "16.4"
    assert note == (
        "The runtime 17.3 has no local library set: this run uses the Python libraries of "
        "16.4 LTS (16.4.x-scala2.12)."
    )


@pytest.mark.parametrize(
    ("key", "nearest"),
    [
        ("14.3.x-scala2.12", "15.4"),
        ("13.3.x-photon-scala2.12", "15.4"),
        ("16.2.x-scala2.12", "16.4"),
        ("custom", "15.4"),
    ],
)
def test_a_spark_version_that_is_no_profile_takes_the_nearest(key: str, nearest: str) -> None:
    chosen, note = environment_profile(key)
    assert chosen.version == nearest
    assert note is not None
    assert f"spark_version {key!r} is not a runtime of this workspace" in note


def test_environments_are_named_by_their_lock(tmp_path: Path) -> None:
    environment, note = environment_for(None, root=tmp_path)
    assert note is None
    assert environment.root.parent == tmp_path
    assert re.fullmatch(r"15\.4-[0-9a-f]{12}", environment.root.name)
    assert not environment.ready
    other, _ = environment_for("16.4.x-scala2.13", root=tmp_path)
    assert re.fullmatch(r"16\.4-[0-9a-f]{12}", other.root.name)
    assert [e.root for e in locked_environments(root=tmp_path)] == [environment.root, other.root]


def test_setup_makes_the_default_runtime_or_the_ones_named(tmp_path: Path) -> None:
    """CI and a first setup pay for one environment; others are named, or made on first use."""

    def versions(names: list[str], every: bool = False) -> list[str]:
        chosen = select_environments(names, every=every, root=tmp_path)
        return [e.profile.version for e in chosen]

    assert versions([]) == ["15.4"]
    assert versions(["16.4.x-scala2.13", "16.4"]) == ["16.4"]
    assert versions([], every=True) == ["15.4", "16.4"]
    with pytest.raises(ValueError, match=r"'17\.3' is no runtime with a local library set"):
        versions(["17.3"])


def test_local_setup_refuses_a_profile_without_libraries(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["local", "setup", "--profile", "17.3.x-scala2.13"]) != 0
    assert "no runtime with a local library set; those with one: 15.4, 16.4" in (
        capsys.readouterr().err
    )


def test_the_kernel_path_holds_the_kernel_package_alone(tmp_path: Path) -> None:
    _kernel_only_path(tmp_path)
    _kernel_only_path(tmp_path)  # again: a pooled kernel's folder is set up more than once
    assert sorted(p.name for p in (tmp_path / "orchestrator").iterdir()) == [
        "__init__.py",
        "local",
    ]
    local = tmp_path / "orchestrator" / "local"
    assert sorted(p.name for p in local.iterdir()) == ["__init__.py", "kernel"]
    assert (local / "kernel" / "dbutils.py").is_file()


@pytest.mark.slow
def test_local_setup_finds_the_environments_made(capsys: pytest.CaptureFixture[str]) -> None:
    """Idempotent: with the environments there (``.ci/setup`` made them) it only says where."""
    assert main(["local", "setup"]) == 0
    out = capsys.readouterr().out
    assert f"runtime 15.4: {kernel_python().parent.parent}" in out
    assert "Setting up" not in out


PROBE = """# Databricks notebook source
import sys, pandas, numpy, yaml, pyodbc
print("python", sys.executable)
print("pyodbc", pyodbc.version)  # a native library over a system one (unixODBC)
print("versions", pandas.__version__, numpy.__version__, yaml.__version__)

# COMMAND ----------

for name in ("junitparser", "pysail", "azure.identity", "orchestrator.config"):
    try:
        __import__(name)
    except ModuleNotFoundError as exc:
        print("missing", name, type(exc).__name__)
    else:
        print("imported", name)
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_notebook_sees_its_runtime_and_not_the_tool(runtime: Workspace) -> None:
    runtime.add("/Users/a/probe", source(PROBE))
    result = runtime.run("/Users/a/probe")
    assert result.status == "SUCCESS", result.error_trace
    locked = _locked("15.4")
    assert f"python {kernel_python()}" in result.logs
    assert (
        f"versions {locked['pandas']} {locked['numpy']} {locked['pyyaml']}" in result.logs
    )  # the runtime's versions, not the tool's
    assert f"pyodbc {locked['pyodbc']}" in result.logs
    for name in ("junitparser", "pysail", "azure.identity", "orchestrator.config"):
        assert f"missing {name} ModuleNotFoundError" in result.logs


VERSIONS = "import sys, numpy\nprint('python', sys.executable)\nprint('numpy', numpy.__version__)"


def _run_on(runtime: Workspace, spark_version: str) -> str:
    runtime.add("/Users/a/nb", source(VERSIONS))
    request = runtime.request("/Users/a/nb")
    request = replace(request, environment={"ORCH_SPARK_VERSION": spark_version})
    result = execute_notebook(request, resolver=runtime.resolver, cancel=threading.Event())
    assert result.status == "SUCCESS", result.error_trace
    return result.logs


# 16.4's environment is not made by .ci/setup: the first of these makes it (half a minute from
# uv's cache), hence the longer time limit
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_cluster_runs_its_notebooks_on_its_runtimes_libraries(runtime: Workspace) -> None:
    logs = _run_on(runtime, "16.4.x-scala2.13")
    assert f"python {kernel_python('16.4.x-scala2.13')}" in logs
    assert kernel_python("16.4.x-scala2.13") != kernel_python()
    assert f"numpy {_locked('16.4')['numpy']}" in logs  # 1.26.4; 15.4's is 1.23.5
    assert "no local library set" not in logs


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_cluster_of_a_runtime_without_libraries_runs_on_the_nearest(
    runtime: Workspace,
) -> None:
    logs = _run_on(runtime, "17.3.x-scala2.13")
    note = (
        "The runtime 17.3 has no local library set: this run uses the Python libraries of "
        "16.4 LTS (16.4.x-scala2.12)."
    )
    assert logs.count(note) == 1
    assert f"python {kernel_python('16.4.x-scala2.12')}" in logs
    assert f"numpy {_locked('16.4')['numpy']}" in logs
