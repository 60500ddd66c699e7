"""``orchestrator build`` end to end against the local workspace, in-process through ``main``
where possible: the sample project green, failures, synthesized failures, timeouts, signals,
faults, concurrent builds and bad input that must change nothing remotely."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from databricks.sdk.service import jobs

from orchestrator.cli import main
from orchestrator.local.server import FaultSettings, LocalWorkspace
from orchestrator.local.ui.test_counts import read_counts
from orchestrator.results.run_export import read_notebook
from tests.buildkit import (
    BUILD_ROOT,
    FIRST_START,
    build,
    build_runs,
    command,
    in_subprocess,
    junit,
    remote_args,
    suites,
)
from tests.conftest import TOKEN, sdk_client
from tests.waiting import running_run


@pytest.mark.slow
def test_sample_project_builds_green_with_r_and_python_results(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(project, "--build-id", "b1") == 0
    got = suites(junit(project, "b1"))
    assert got["run_pytest"].get("tests") == "8" and got["run_pytest"].get("failures") == "0"
    assert got["run_testthat"].get("tests") == "10"
    spark = got["run_spark_tests"]
    assert spark.get("tests") == "5" and spark.get("failures") == "0" and spark.get("errors") == "0"
    exported = read_notebook((project / "artifacts" / "b1" / "run_pytest.html").read_text())
    # the task ran the build's notebook itself: its export is that notebook's cells and output
    assert exported is not None and exported.name.endswith("run_pytest")
    assert "8 passed" in exported.output()
    out = capsys.readouterr().out
    assert "PASSED" in out and "run_testthat" in out
    # cleaned: nothing of the build is left in storage
    assert not (project / ".orchestrator" / "storage" / "sample" / "b1").exists()


@pytest.mark.slow
def test_a_build_gives_the_local_jobs_ui_the_counts_of_its_junit(
    project: Path, server: LocalWorkspace
) -> None:
    """The build itself records its merged JUnit's counts for the run page (nothing else
    posts them): on a workspace on this machine, through ``/local-admin``."""
    assert build(project, "--build-id", "tc1", *remote_args(server)) == 0
    (run,) = build_runs(sdk_client(server))
    counts = read_counts(server.store, int(run.run_id))
    assert counts is not None, "the build did not record its test counts"
    totals = {key: 0 for key in ("tests", "failures", "errors", "skipped")}
    for suite in junit(project, "tc1").iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, "0") or 0)
    assert totals["tests"] > 0
    assert (counts.tests, counts.failures, counts.errors, counts.skipped) == tuple(totals.values())
    assert counts.source == "build"


@pytest.mark.slow
def test_a_broken_test_exits_1_with_the_failure_in_junit(
    project: Path, server: LocalWorkspace
) -> None:
    test_file = project / "databricks" / "tests" / "pytest" / "test_features.py"
    test_file.write_text(
        test_file.read_text()
        + "\n\ndef test_broken():\n    assert 1 + 1 == 3, 'arithmetic is broken'\n"
    )
    assert build(project, "--build-id", "b2", *remote_args(server)) == 1
    got = suites(junit(project, "b2"))
    assert got["run_pytest"].get("failures") == "1"
    text = ET.tostring(got["run_pytest"], encoding="unicode")
    assert "arithmetic is broken" in text
    # the workspace build folder was removed; the build's job stays, for the Jobs UI
    w = sdk_client(server)
    assert list(w.workspace.list(f"{BUILD_ROOT}/sample")) == []
    assert [j.settings.name for j in w.jobs.list()] == ["build-sample b2"]


@pytest.mark.slow
def test_a_notebook_dying_before_xml_gets_a_synthesized_failure(
    project: Path, server: LocalWorkspace
) -> None:
    notebook = project / "databricks" / "tests" / "run_testthat.r"
    notebook.write_text(
        notebook.read_text().replace(
            "# COMMAND ----------", "# COMMAND ----------\n\nstop('cluster fell over')\n", 1
        )
    )
    assert build(project, "--build-id", "b3", *remote_args(server)) == 1
    got = suites(junit(project, "b3"))
    assert got["run_pytest"].get("failures") == "0"
    synthesized = ET.tostring(got["run_testthat"], encoding="unicode")
    assert "cluster fell over" in synthesized
    assert server.url in synthesized  # the run URL


def slow_project(root: Path) -> None:
    notebook = root / "databricks" / "tests" / "run_pytest.py"
    notebook.write_text(
        notebook.read_text().replace(
            "# COMMAND ----------", "# COMMAND ----------\n\nimport time\ntime.sleep(300)\n", 1
        )
    )


@pytest.mark.slow
def test_build_timeout_cancels_the_run_and_exits_4(project: Path, server: LocalWorkspace) -> None:
    slow_project(project)
    code = build(project, "--build-id", "b4", "--timeout", "4s", *remote_args(server))
    assert code == 4
    w = sdk_client(server)
    (run,) = build_runs(w)
    assert run.state.result_state == jobs.RunResultState.CANCELED
    got = suites(junit(project, "b4"))
    assert got["run_pytest"].get("failures") == "1"  # synthesized: it never wrote XML


@pytest.mark.slow
def test_sigterm_cancels_the_run_and_exits_143(project: Path, server: LocalWorkspace) -> None:
    slow_project(project)
    env = {**os.environ, "ORCH_TEST_TOKEN": TOKEN, "CI": "true"}
    proc = subprocess.Popen(
        in_subprocess(*command(project, "build", "--build-id", "b5", *remote_args(server))),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run_id = running_run(sdk_client(server))
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, out
    run = sdk_client(server).jobs.get_run(run_id)
    assert run.state.result_state == jobs.RunResultState.CANCELED
    assert list(sdk_client(server).jobs.list_runs(active_only=True)) == []


@pytest.mark.slow
def test_injected_429_and_503_give_the_same_results_and_one_run(
    project: Path, server: LocalWorkspace
) -> None:
    server.faults.configure(
        FaultSettings(p429=0.05, p429_retry_after=0.05, p503=0.1, retry_after_seconds=0, seed=3)
    )
    assert build(project, "--build-id", "b6", *remote_args(server)) == 0
    got = suites(junit(project, "b6"))
    assert got["run_pytest"].get("tests") == "8" and got["run_testthat"].get("tests") == "10"
    assert len(build_runs(sdk_client(server))) == 1
    injected = server.faults.snapshot()["injected"]
    assert injected.get("503", 0) > 0


@pytest.mark.slow
def test_eight_concurrent_builds_eight_jobs_each_its_own(
    project: Path, server: LocalWorkspace
) -> None:
    env = {**os.environ, "ORCH_TEST_TOKEN": TOKEN, "CI": "true"}
    procs = [
        subprocess.Popen(
            in_subprocess(
                *command(project, "build", "--build-id", f"c{i}", "--keep", *remote_args(server))
            ),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(8)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    failed = [out for p, out in zip(procs, outputs, strict=True) if p.returncode != 0]
    assert not failed, "\n\n".join(failed)
    w = sdk_client(server)
    names = sorted(j.settings.name for j in w.jobs.list())
    assert names == [f"build-sample c{i}" for i in range(8)]
    assert len(build_runs(w)) == 8
    folders = {o.path for o in w.workspace.list(f"{BUILD_ROOT}/sample")}
    assert {f"{BUILD_ROOT}/sample/c{i}" for i in range(8)} <= folders
    for i in range(8):
        got = suites(junit(project, f"c{i}"))
        assert got["run_pytest"].get("tests") == "8" and got["run_testthat"].get("tests") == "10"


def nothing_created(ws: LocalWorkspace) -> bool:
    """No job, and no workspace object beyond those of the workspace's first start."""
    w = sdk_client(ws)
    paths = {str(o.path) for o in w.workspace.list("/", recursive=True)}
    return list(w.jobs.list()) == [] and paths <= FIRST_START


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: (p / "job-template.json").write_text('{"name": "x",, }'), "job-template.json:1"),
        (
            lambda p: (p / "job-template.json").write_text(
                (p / "job-template.json").read_text().replace("${cluster_id}", "${clusterid}")
            ),
            "clusterid",
        ),
        (
            lambda p: (p / "job-template.json").write_text(
                (p / "job-template.json")
                .read_text()
                .replace('"task_key": "run_testthat"', '"task_key": "run_pytest"')
            ),
            "run_pytest",
        ),
        (lambda p: shutil.rmtree(p / "databricks"), "databricks"),
        (
            lambda p: (p / "databricks" / "big.py").write_bytes(b"x" * (10 * 1024 * 1024 + 10)),
            "big.py",
        ),
        (
            lambda p: (p / "orchestrator.yml").write_text("version: 1\ndefaults:\n  bogus: 1\n"),
            "bogus",
        ),
        (
            lambda p: (p / "orchestrator.yml").write_text(
                "version: 1\ndefaults:\n  workspace:\n    token: dapi0123456789\n"
            ),
            "workspace.token",
        ),
        (
            lambda p: (p / "databricks" / "tests" / "run_pytest.py").unlink(),
            "job-template.json: task run_pytest: notebook tests/run_pytest is not among",
        ),
        (
            lambda p: (p / "not-a-folder").write_text("a file"),
            "not-a-folder: is a file, not a folder",
        ),
    ],
    ids=[
        "malformed-json",
        "unknown-placeholder",
        "invalid-settings",
        "no-notebooks",
        "notebook-over-10mb",
        "invalid-config",
        "literal-secret",
        "task-notebook-missing",
        "storage-root-a-file",
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_remote(
    project: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str], change, expected: str
) -> None:  # type: ignore[no-untyped-def]
    change(project)
    storage = ["--set", f"storage.root={project / 'not-a-folder'}"] if "a file" in expected else []
    assert main(command(project, "plan", "--build-id", "bad", *storage)) == 2  # at plan already
    capsys.readouterr()
    assert build(project, "--build-id", "bad", *storage, *remote_args(server)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all(line.startswith("orchestrator: error: ") for line in lines), lines
    assert expected in lines[0], lines
    assert nothing_created(server)


@pytest.mark.parametrize(
    "flags",
    [
        ["--repo-name", "a/b"],
        ["--repo-name", ".."],
        ["--repo-name", "has space"],
        ["--build-id", "x\x07y"],
        ["--build-id", "../up"],
    ],
)
def test_unsafe_repo_names_and_build_ids_are_refused(
    project: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    args = ["--build-id", "ok", *flags, *remote_args(server)]
    code = main(command(project, "build", *args, repo_name=None))
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("orchestrator: error: ")
    assert nothing_created(server)


def test_plan_prints_everything_and_changes_nothing(
    project: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(command(project, "plan", "--build-id", "p1", *remote_args(server)))
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["job"]["name"] == "build-sample p1"
    assert doc["job"]["tags"] == {"repo": "sample", "build": "p1", "managed-by": "orchestrator"}
    targets = {d["target"] for d in doc["deploy"]}
    folder = "~/orchestrator-builds/sample/p1"  # the home is known once the build runs
    assert f"{folder}/tests/run_pytest" in targets
    assert not any("/tests/pytest/" in t for t in targets)  # test scripts go to storage
    assert doc["parameters"]["build_id"] == "p1"
    paths = [t["notebook_task"]["notebook_path"] for t in doc["job"]["tasks"]]
    assert paths == [f"{folder}/tests/{t}" for t in doc["tasks"]]
    assert nothing_created(server)


@pytest.mark.slow
def test_a_terminated_cluster_is_started_before_the_run(
    project: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    sdk_client(server).clusters.delete("0000-000000-local")
    assert build(project, "--build-id", "b7", *remote_args(server)) == 0
    assert "started" in capsys.readouterr().out
    assert sdk_client(server).clusters.get("0000-000000-local").state.value == "RUNNING"
