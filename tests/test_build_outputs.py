"""What a build leaves and prints: the build marker, --json, live progress, profile auth, and
--changed-since selecting the affected test notebooks from git."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.databricks import parse_run
from orchestrator.build.progress import Progress
from orchestrator.cli import main
from orchestrator.local.server import LocalWorkspace
from tests.buildkit import BUILD_ROOT, build, command, remote_args
from tests.conftest import TOKEN, sdk_client


@pytest.mark.slow
def test_the_marker_is_written_to_the_build_folder_and_storage(
    project: Path, server: LocalWorkspace
) -> None:
    assert build(project, "--build-id", "m1", "--keep", *remote_args(server)) == 0
    w = sdk_client(server)
    marker = json.loads(w.workspace.download(f"{BUILD_ROOT}/sample/m1/_build.json").read())
    assert marker["build_id"] == "m1" and marker["repo"] == "sample"
    assert {"branch", "commit", "pull_request", "created"} <= set(marker)
    stored = project / ".orchestrator" / "storage" / "sample" / "m1" / "_build.json"
    assert json.loads(stored.read_text())["build_id"] == "m1"


@pytest.mark.slow
def test_json_output_is_one_document_on_stdout(
    project: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(project, "--build-id", "j1", "--json", *remote_args(server)) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["status"] == "passed" and document["tests"] == 23
    assert document["exit_code"] == 0
    assert "==> deploy" in captured.err  # progress goes to stderr with --json


@pytest.mark.slow
def test_a_databricks_profile_authenticates_the_build(
    project: Path, server: LocalWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "databrickscfg"
    config.write_text(f"[ci]\nhost = {server.url}\ntoken = {TOKEN}\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(config))
    code = build(
        project,
        "--build-id",
        "p1",
        "--set",
        f"workspace.host={server.url}",
        "--set",
        "workspace.profile=ci",
        "--set",
        "cluster_id=0000-000000-local",
    )
    assert code == 0


def test_progress_rewrites_one_line_on_a_terminal_and_prints_lines_in_ci() -> None:
    run = parse_run({"run_id": 1, "tasks": [{"task_key": "a", "status": {"state": "RUNNING"}}]})
    live = io.StringIO()
    Progress(live, live=True).run(run)
    assert live.getvalue().startswith("\r\x1b[K")
    ci = io.StringIO()
    progress = Progress(ci, live=False)
    progress.run(run)
    progress.run(run)  # unchanged: nothing
    assert ci.getvalue() == "    a: RUNNING\n"


def test_progress_of_many_tasks_is_counts_and_the_tasks_that_just_failed() -> None:
    def state(key: str, result: str | None) -> dict[str, object]:
        if result is None:
            return {"task_key": key, "status": {"state": "RUNNING"}}
        return {
            "task_key": key,
            "state": {"life_cycle_state": "TERMINATED", "result_state": result},
        }

    def run(*results: str | None) -> Any:
        tasks = [state(f"n{i:03d}", r) for i, r in enumerate(results)]
        tasks += [{"task_key": f"p{i}", "status": {"state": "PENDING"}} for i in range(400)]
        return parse_run({"run_id": 1, "tasks": tasks})

    ci = io.StringIO()
    progress = Progress(ci, live=False)
    progress.run(run(None, None, "SUCCESS"))
    progress.run(run(None, None, "SUCCESS"))
    progress.run(run("FAILED", None, "SUCCESS"))
    progress.run(run("FAILED", "UPSTREAM_FAILED", "SUCCESS"))
    assert ci.getvalue().splitlines() == [
        "    400 pending, 2 running, 1 passed, 0 failed, 0 skipped",
        "    400 pending, 1 running, 1 passed, 1 failed, 0 skipped; failed: n000",
    ]  # then a line at each tenth of the tasks done, and for each new failure


def test_a_log_of_a_500_task_run_has_a_few_lines() -> None:
    ci = io.StringIO()
    progress = Progress(ci, live=False)
    for done in range(501):
        tasks = [
            {
                "task_key": f"n{i:03d}",
                "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
            }
            if i < done
            else {"task_key": f"n{i:03d}", "status": {"state": "RUNNING"}}
            for i in range(500)
        ]
        progress.run(parse_run({"run_id": 1, "tasks": tasks}))
    assert len(ci.getvalue().splitlines()) <= 12


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(project: Path) -> Path:
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "base")
    return project


def planned_tasks(root: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(command(root, "plan", "--build-id", "x", "--changed-since", "HEAD")) == 0
    return list(json.loads(capsys.readouterr().out)["tasks"])


def test_changed_since_maps_changes_to_test_notebooks(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scoring = repo / "databricks" / "churn" / "scoring.R"
    scoring.write_text(scoring.read_text() + "\n# touched\n")
    assert planned_tasks(repo, capsys) == ["run_testthat"]
    git(repo, "checkout", "--", ".")
    features = repo / "databricks" / "churn" / "features.py"
    features.write_text(features.read_text() + "\n# touched\n")
    # Python code affects the Python test notebooks: pytest's and the Spark one
    assert planned_tasks(repo, capsys) == ["run_pytest", "run_spark_tests"]
    git(repo, "checkout", "--", ".")
    (repo / "databricks" / "tests" / "data" / "extra.csv").write_text("a\n1\n")
    assert planned_tasks(repo, capsys) == ["run_pytest", "run_testthat", "run_spark_tests"]
    (repo / "databricks" / "tests" / "data" / "extra.csv").unlink()
    (repo / "NOTES.md").write_text("docs only\n")
    assert planned_tasks(repo, capsys) == []


def test_nothing_affected_exits_0_without_a_run(
    repo: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "NOTES.md").write_text("docs only\n")
    assert build(repo, "--build-id", "n1", "--changed-since", "HEAD", *remote_args(server)) == 0
    assert "no test notebook is affected" in capsys.readouterr().out
    assert list(sdk_client(server).jobs.list()) == []


@pytest.mark.slow
def test_an_embedded_build_ends_with_a_command_and_url_that_open_its_run_later(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import re
    import urllib.request

    from orchestrator.local.server import start_local_workspace

    monkeypatch.chdir(project)
    assert build(project, "--build-id", "browse") == 0
    out = capsys.readouterr().out
    hint = [line for line in out.splitlines() if line.startswith("Browse this run later:")]
    assert len(hint) == 1, out
    found = re.fullmatch(
        r"Browse this run later: orchestrator local serve   then open "
        r"http://127\.0\.0\.1:8765(/jobs/\d+/runs/\d+)",
        hint[0],
    )
    assert found, hint[0]  # no --state-dir: serve's default is the repo's kept state
    # what `orchestrator local serve` serves from that state, after the build's server is gone
    ws = start_local_workspace(project / ".orchestrator" / "local-workspace", port=0)
    try:
        with urllib.request.urlopen(ws.url + found.group(1), timeout=30) as response:
            page = response.read().decode()
    finally:
        ws.stop()
    assert "run_pytest" in page and "run_testthat" in page
    assert "23/23 passed" in page or "23 passed" in page  # the counts the build collected


def test_the_browse_hint_names_the_state_dir_when_it_is_not_servers_default(
    tmp_path: Path,
) -> None:
    from orchestrator.build.commands import browse_hint
    from orchestrator.build.plan import BuildResult

    state = tmp_path / "repo" / ".orchestrator" / "local-workspace"
    result = BuildResult(0, 3, "http://127.0.0.1:40123/jobs/1/runs/3", local_state=state)
    hint = browse_hint(result, cwd=tmp_path)
    assert hint == (
        f"Browse this run later: orchestrator local serve --state-dir {state}"
        "   then open http://127.0.0.1:8765/jobs/1/runs/3"
    )
    assert browse_hint(BuildResult(0, 3, result.run_url), cwd=tmp_path) is None  # remote


def test_a_build_starts_with_only_its_own_results_and_few_artifacts(project: Path) -> None:
    """A reused agent's test-results/ holds no earlier build's XML once a build starts (a CI
    step publishing **/TEST-*.xml would publish it again); artifacts/ keeps a few builds."""
    import os

    from orchestrator.build.local_outputs import KEPT_ARTIFACTS, start_outputs
    from orchestrator.build.plan import BuildOptions, prepare

    results = project / "test-results"
    results.mkdir()
    for name in ("TEST-sample-old1.xml", "TEST-sample-old2.xml", "TEST-other-x.xml"):
        (results / name).write_text("<testsuites/>")
    artifacts = project / "artifacts"
    for n in range(8):
        (artifacts / f"b{n}").mkdir(parents=True)
        os.utime(artifacts / f"b{n}", (1000 + n, 1000 + n))
    plan = prepare(BuildOptions(build_id="new", repo_name="sample"), environ={}, cwd=project)
    out = io.StringIO()
    start_outputs(plan, Progress(out, live=False))
    assert sorted(p.name for p in results.iterdir()) == ["TEST-other-x.xml"]
    assert "test-results: removed 2 result files of earlier builds" in out.getvalue()
    kept = sorted(p.name for p in artifacts.iterdir())
    assert kept == [f"b{n}" for n in range(8 - (KEPT_ARTIFACTS - 1), 8)]
