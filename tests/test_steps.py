"""The build's steps as separate commands sharing a build id and a run id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from databricks.sdk.service import jobs

from orchestrator.cli import main
from orchestrator.local.server import LocalWorkspace
from tests.buildkit import BUILD_ROOT, command, junit, remote_args, suites
from tests.conftest import sdk_client


def step(root: Path, name: str, *args: str) -> int:
    return main(command(root, name, "--build-id", "s1", *args))


@pytest.mark.slow
def test_deploy_run_wait_collect_clean_one_after_another(
    project: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = remote_args(server)
    w = sdk_client(server)
    assert step(project, "deploy", *remote) == 0
    assert w.workspace.get_status(f"{BUILD_ROOT}/sample/s1/tests/run_pytest").path
    capsys.readouterr()
    assert step(project, "run", "--json", *remote) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert step(project, "wait", "--run-id", str(run_id), *remote) == 0
    assert w.jobs.get_run(run_id).state.result_state == jobs.RunResultState.SUCCESS
    assert step(project, "collect", "--run-id", str(run_id), *remote) == 0
    got = suites(junit(project, "s1"))
    assert got["run_pytest"].get("tests") == "8" and got["run_testthat"].get("tests") == "10"
    assert step(project, "clean", *remote) == 0
    assert list(w.workspace.list(f"{BUILD_ROOT}/sample")) == []
    assert [j.settings.name for j in w.jobs.list()] == ["build-sample s1"]  # kept for the UI
    assert not (project / ".orchestrator" / "storage" / "sample" / "s1").exists()


def test_steps_that_need_a_lasting_workspace_refuse_the_embedded_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert step(project, "run") == 2
    assert "outlives the command" in capsys.readouterr().err


def test_a_run_on_this_machine_is_polled_every_tenth_of_a_second() -> None:
    from orchestrator.build.flow import _polling
    from orchestrator.services import Connection

    def first(host: str, local: bool, cap: float = 1.5) -> list[float]:
        conn = Connection(None, host, local, "c", ())  # type: ignore[arg-type]
        intervals = _polling(conn, cap).intervals()
        return [round(next(intervals), 3) for _ in range(4)]

    assert first("http://127.0.0.1:41234", local=True) == [0.1] * 4
    assert first("http://localhost:8765", local=False) == [0.1] * 4
    assert first("https://adb-1.azuredatabricks.net", local=False) == [0.5, 0.75, 1.125, 1.5]
    assert first("http://127.0.0.1:8765", local=False, cap=0.05) == [0.05] * 4
