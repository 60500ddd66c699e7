"""A command that fails with a usage or infrastructure error is visible in the CI's own error UI:
an annotation per problem line and the failed task (Azure DevOps) or the step summary (GitHub),
masked; ``--json`` carries the error. All of it from the CLI's one error mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator.cli import main
from orchestrator.masking import masked_output, register_secret
from tests.buildkit import command

TWO_PROBLEMS = ("--set", "timeouts.build=abc", "--set", "concurrency.deploy=0")


@pytest.fixture
def github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.delenv("TF_BUILD", raising=False)
    return summary


def test_github_gets_an_annotation_per_problem_and_the_step_summary(
    project: Path, github: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command(project, "build", *TWO_PROBLEMS)) == 2
    err = capsys.readouterr().err
    annotations = [line for line in err.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 2, err
    assert annotations[0].startswith("::error title=orchestrator build::command line: ")
    assert "timeouts.build" in annotations[0] and "concurrency.deploy" in annotations[1]
    summary = github.read_text()
    assert summary.startswith("## orchestrator build: ERROR")
    assert "timeouts.build" in summary and "concurrency.deploy" in summary


def test_azure_devops_gets_an_issue_per_problem_and_a_failed_task(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TF_BUILD", "True")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert main(command(project, "deploy", *TWO_PROBLEMS)) == 2
    err = capsys.readouterr().err.splitlines()
    issues = [line for line in err if line.startswith("##vso[task.logissue type=error;]")]
    assert len(issues) == 2, err
    assert issues[0].startswith("##vso[task.logissue type=error;]orchestrator deploy: command")
    assert err.count("##vso[task.complete result=Failed;]orchestrator deploy") == 1
    # the plain lines are still there for a human reading the log
    assert sum(line.startswith("orchestrator: error: ") for line in err) == 2


def test_plain_output_has_no_ci_commands(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TF_BUILD", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert main(command(project, "build", *TWO_PROBLEMS)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "orchestrator: error: command line: timeouts.build: expected seconds or a duration "
        "like '90s', '30m', '1h30m'",
        "orchestrator: error: command line: concurrency.deploy: Input should be greater than "
        "or equal to 1",
    ]


def test_json_output_carries_the_error(
    project: Path, github: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(command(project, "build", "--json", *TWO_PROBLEMS)) == 2
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # stdout is still one JSON document
    assert document["status"] == "error" and document["exit_code"] == 2
    assert document["error"].splitlines()[1].startswith("command line: concurrency.deploy")
    assert "::error " in captured.err


def test_cleanup_errors_are_published_too(
    project: Path, github: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["cleanup", "--config", str(project / "orchestrator.yml"), "--older-than", "soon"])
    err = capsys.readouterr().err
    assert code == 2
    assert "::error title=orchestrator cleanup::" in err, err
    assert "## orchestrator cleanup: ERROR" in github.read_text()


def test_published_errors_are_masked(
    github: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-value-in-an-error"
    parser = cli._parser()
    args = parser.parse_args(["build", "--json"])
    with masked_output(environ={}):
        register_secret(secret)
        cli._report_error(args, [f"storage refused https://acct/x?sig={secret}"], 3)
    captured = capsys.readouterr()
    for text in (captured.out, captured.err, github.read_text()):
        assert secret not in text
        assert "storage refused" in text
