"""Publishing results: plain text, Azure DevOps logging commands, GitHub annotations, JSON."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.config.context import BuildContext
from orchestrator.results.junit import FailedCase, ResultsSummary, SuiteSummary
from orchestrator.results.publish import (
    detect_format,
    escape_ado_data,
    escape_ado_property,
    escape_github_data,
    escape_github_property,
    publish,
    publish_error,
    render_markdown,
    render_table,
    to_json,
)

ADO = {"TF_BUILD": "True"}
RUN_URL = "https://adb-1.azuredatabricks.net/#job/1/run/2"


def failure(name: str, message: str = "assert 1 == 2", details: str = "") -> FailedCase:
    return FailedCase(
        suite="run_pytest",
        classname="test_model",
        name=name,
        kind="failure",
        message=message,
        details=details or f"{message}\nTraceback line",
    )


def summary(*failed: FailedCase, tests: int = 5, skipped: int = 1) -> ResultsSummary:
    failures = sum(1 for f in failed if f.kind == "failure")
    errors = len(failed) - failures
    suites = (
        SuiteSummary("run_pytest", tests - 2, failures, errors, skipped, 1.25, ("a.xml",)),
        SuiteSummary("run_testthat", 2, 0, 0, 0, 0.5, ("b.xml",)),
    )
    return ResultsSummary(
        tests=tests,
        failures=failures,
        errors=errors,
        skipped=skipped,
        time=1.75,
        suites=suites if tests else (),
        failed=tuple(failed),
        files=("a.xml", "b.xml"),
        output=Path("test-results/junit.xml"),
    )


def published(result: ResultsSummary, environ: dict[str, str], **kwargs: object) -> str:
    out = io.StringIO()
    publish(result, out=out, environ=environ, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def github_env(tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


# -- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"TF_BUILD": "True"}, "azure-devops"),
        ({"GITHUB_ACTIONS": "true"}, "github-actions"),
        ({"TF_BUILD": "False", "GITHUB_ACTIONS": "false"}, "plain"),
        ({}, "plain"),
    ],
)
def test_the_ci_is_recognised_from_its_variables(environ: dict[str, str], expected: str) -> None:
    assert detect_format(environ) == expected


def test_the_table_lists_every_suite_and_a_total() -> None:
    table = render_table(summary(failure("test_a")))
    lines = table.splitlines()
    assert lines[0].split() == ["Suite", "Tests", "Passed", "Failed", "Errors", "Skipped", "Time"]
    assert lines[2].split() == ["run_pytest", "3", "1", "1", "0", "1", "1.2s"]
    assert lines[3].split() == ["run_testthat", "2", "2", "0", "0", "0", "0.5s"]
    assert lines[-1].split() == ["TOTAL", "5", "3", "1", "0", "1", "1.8s"]
    assert len({len(line) for line in lines}) == 1  # aligned


# -- plain ------------------------------------------------------------------------------------


def test_plain_output_shows_table_failures_and_verdict() -> None:
    text = published(summary(failure("test_a")), {}, run_url=RUN_URL)
    assert "run_pytest > test_model.test_a" in text
    assert "    assert 1 == 2\n    Traceback line\n" in text
    assert text.endswith(f"FAILED: 1 failed, 3 passed, 1 skipped of 5 tests\nRun: {RUN_URL}\n")
    assert "##" not in text and "::" not in text


def test_plain_output_of_a_green_build() -> None:
    text = published(summary(), {})
    assert text.endswith("PASSED: 4 passed, 1 skipped of 5 tests\n")


def test_unicode_stays_unicode_and_control_characters_go() -> None:
    text = published(summary(failure("test_\u00e9t\u00e9", "\u2717 \u00fcber\x1b[31m\x07")), {})
    assert "test_\u00e9t\u00e9" in text and "\u2717 \u00fcber[31m" in text
    assert "\\u" not in text and "\x1b" not in text and "\x07" not in text
    # a console that cannot show them (the CLI sets errors="replace" on its streams) gets "?"
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="replace")
    publish(summary(failure("test_\u00e9t\u00e9", "\u2717 \u00fcber")), out=out, environ=ADO)
    out.flush()


def test_a_failing_task_fits_one_screen_with_each_message_once() -> None:
    details = "\n".join(
        [
            "Failed in notebooks/checks, cell 4",
            "  through notebooks/run_checks",
            "  > check_unique(ids)",
            "ValueError: ids must be unique",
            "",
            "FAILED tests/test_a.py::test_b - assert 1 == 2",
            "",
            "Output (last 40 lines):",
            *(f"noise {n}" for n in range(40)),
            "",
            "Traceback (the user's code):",
            "ValueError: ids must be unique",
            "",
            "Run: http://ws/runs/5",
        ]
    )
    case = failure("checks", "ValueError: ids must be unique (notebooks/checks, cell 4)", details)
    text = published(summary(case), {}, run_url=RUN_URL)
    block = text[text.index("FAILURE ") : text.rindex("FAILED: 1 failed")]
    assert block.splitlines() == [
        "FAILURE run_pytest > test_model.checks",
        "    ValueError: ids must be unique (notebooks/checks, cell 4)",
        "      through notebooks/run_checks",
        "      > check_unique(ids)",
        "    FAILED tests/test_a.py::test_b - assert 1 == 2",
        "    Run: http://ws/runs/5",
        "",
    ]
    assert text.count("ids must be unique") == 1 and "noise" not in text


# -- Azure DevOps -----------------------------------------------------------------------------


def test_azure_devops_gets_groups_issues_and_a_failed_task() -> None:
    text = published(summary(failure("test_a"), failure("test_b")), ADO)
    lines = text.splitlines()
    assert lines[0] == "##[group]Test results: FAILED: 2 failed, 2 passed, 1 skipped of 5 tests"
    assert lines.count("##[endgroup]") == 1
    assert (
        "##vso[task.logissue type=error;]run_pytest > test_model.test_a: "
        "assert 1 == 2%0ATraceback line"
    ) in lines
    assert text.count("assert 1 == 2") == 2  # once per failing test: in its annotation
    assert lines[-1] == (
        "##vso[task.complete result=Failed;]FAILED: 2 failed, 2 passed, 1 skipped of 5 tests"
    )


def test_azure_devops_green_build_does_not_touch_the_task_result() -> None:
    text = published(summary(), ADO)
    assert "##vso[" not in text


def test_azure_devops_empty_results_warn_and_succeed_with_issues() -> None:
    text = published(summary(tests=0, skipped=0), ADO)
    assert "##vso[task.logissue type=warning;]Test results: No test results were collected" in text
    assert "##vso[task.complete result=SucceededWithIssues;]NO TESTS" in text


def test_azure_devops_messages_are_escaped() -> None:
    text = published(summary(failure("t", "100% off\r\nline 2; ]end", details="-")), ADO)
    issue = next(line for line in text.splitlines() if "logissue" in line)
    assert issue.endswith("100%AZP25 off%0Aline 2; ]end%0A-")


def test_annotations_are_capped_with_a_count_of_the_rest() -> None:
    cases = [failure(f"test_{i}") for i in range(13)]
    text = published(summary(*cases, tests=20), ADO, max_annotations=10)
    issues = [line for line in text.splitlines() if "task.logissue" in line]
    assert len(issues) == 10
    assert [line for line in text.splitlines() if line.startswith("FAILURE")] == [
        f"FAILURE run_pytest > test_model.test_{i}" for i in (10, 11, 12)
    ]


# -- GitHub Actions ---------------------------------------------------------------------------


def test_github_gets_groups_error_annotations_and_a_step_summary(tmp_path: Path) -> None:
    environ = github_env(tmp_path)
    (tmp_path / "summary.md").write_text("earlier step\n")
    text = published(summary(failure("test_a")), environ, run_url=RUN_URL)
    lines = text.splitlines()
    assert lines[0] == "::group::Test results: FAILED: 1 failed, 3 passed, 1 skipped of 5 tests"
    assert "::endgroup::" in lines
    assert "::error title=run_pytest > test_model.test_a::assert 1 == 2%0ATraceback line" in lines
    markdown = (tmp_path / "summary.md").read_text()
    assert markdown.startswith("earlier step\n## Test results: FAILED\n")
    assert "| run\\_pytest | 3 | 1 | 1 | 0 | 1 | 1.2s |" in markdown
    assert f"[Databricks run]({RUN_URL})" in markdown
    assert "<details><summary>run_pytest &gt; test_model.test_a</summary>" in markdown


def test_github_annotation_titles_escape_colons_and_commas(tmp_path: Path) -> None:
    case = FailedCase("s", None, "a: b, c", "error", "m", "")
    text = published(summary(case), github_env(tmp_path))
    assert "::error title=s > a%3A b%2C c::m" in text.splitlines()


def test_github_without_a_step_summary_file_still_publishes() -> None:
    text = published(summary(failure("t")), {"GITHUB_ACTIONS": "true"})
    assert "::error title=" in text


def test_an_unwritable_step_summary_does_not_fail_the_report(tmp_path: Path) -> None:
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path)}  # a folder
    assert "::error" in published(summary(failure("t")), environ)


def test_markdown_cells_cannot_break_the_table_or_inject_html() -> None:
    result = ResultsSummary(
        tests=1,
        failures=0,
        errors=0,
        skipped=0,
        time=0.0,
        suites=(SuiteSummary("a|b<script>*x*", 1, 0, 0, 0, 0.0, ()),),
        failed=(),
        files=(),
        output=None,
    )
    markdown = render_markdown(result)
    row = next(line for line in markdown.splitlines() if "script" in line)
    assert row.startswith("| a\\|b&lt;script&gt;\\*x\\* | 1 |")


# -- a test cannot issue logging commands -----------------------------------------------------

HOSTILE = [
    "##vso[task.setvariable variable=DEPLOY]yes",
    "##[error]fake",
    "::set-env name=PATH::/tmp",
    "  ::add-mask::x",
    "::endgroup::",
]


@pytest.mark.parametrize("environ", [ADO, {"GITHUB_ACTIONS": "true"}])
def test_test_output_never_becomes_a_ci_command(environ: dict[str, str]) -> None:
    cases = [failure(h, h, details="\n".join(HOSTILE)) for h in HOSTILE]
    text = published(summary(*cases, tests=10), environ)
    ours = re.compile(
        r"^(##\[group\]|##\[endgroup\]$|##vso\[task\.(logissue|complete) [^\]]*\]|"
        r"::group::|::endgroup::$|::(error|warning) title=[^:]*::)"
    )
    for line in text.splitlines():
        if "##vso[" in line or "##[" in line or line.lstrip().startswith("::"):
            assert ours.match(line), line
            assert line.count("##vso[") <= 1, line


# -- errors and JSON --------------------------------------------------------------------------


def test_an_error_without_results_fails_the_azure_devops_task() -> None:
    out = io.StringIO()
    publish_error("workspace refused: 403\nsee logs", out=out, environ=ADO)
    assert out.getvalue().splitlines() == [
        "##vso[task.logissue type=error;]orchestrator: workspace refused: 403%0Asee logs",
        "##vso[task.complete result=Failed;]orchestrator",
    ]


def test_an_error_without_results_is_annotated_on_github(tmp_path: Path) -> None:
    out = io.StringIO()
    publish_error("cluster lost", out=out, environ=github_env(tmp_path))
    assert out.getvalue() == "::error title=orchestrator::cluster lost\n"
    assert "cluster lost" in (tmp_path / "summary.md").read_text()


def test_an_error_without_results_in_plain_text() -> None:
    out = io.StringIO()
    publish_error("bad config", out=out, environ={})
    assert out.getvalue() == "error: orchestrator: bad config\n"


def test_json_summary_describes_results_and_build() -> None:
    context = BuildContext("github-actions", "9-1", "42", "repo", "main", "abc", "7", "https://x")
    document = to_json(summary(failure("test_a")), context=context, run_url=RUN_URL)
    assert json.loads(json.dumps(document)) == document
    assert document["status"] == "failed"
    assert (document["tests"], document["passed"], document["failures"]) == (5, 3, 1)
    assert document["suites"][0] == {
        "name": "run_pytest",
        "tests": 3,
        "passed": 1,
        "failures": 1,
        "errors": 0,
        "skipped": 1,
        "time": 1.25,
        "sources": ["a.xml"],
    }
    assert document["failed"][0]["name"] == "test_a"
    assert document["build"]["build_id"] == "9-1"
    assert document["build"]["pull_request"] == "7"
    assert document["run_url"] == RUN_URL
    assert document["junit"] == "test-results/junit.xml"


def test_json_status_of_green_and_empty_builds() -> None:
    assert to_json(summary())["status"] == "passed"
    assert to_json(summary(tests=0, skipped=0))["status"] == "empty"


# -- escaping properties ----------------------------------------------------------------------


def unescape_ado(text: str) -> str:
    for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3B", ";"), ("%5D", "]")):
        text = text.replace(code, char)
    return text.replace("%AZP25", "%")


def unescape_github(text: str) -> str:
    for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ",")):
        text = text.replace(code, char)
    return text.replace("%25", "%")


@given(st.text())
def test_ado_escaping_round_trips_and_stays_on_one_line(text: str) -> None:
    data, prop = escape_ado_data(text), escape_ado_property(text)
    assert "\n" not in data and "\r" not in data
    assert ";" not in prop and "]" not in prop and "\n" not in prop
    assert unescape_ado(data) == text
    assert unescape_ado(prop) == text


@given(st.text())
def test_github_escaping_round_trips_and_stays_on_one_line(text: str) -> None:
    data, prop = escape_github_data(text), escape_github_property(text)
    assert "\n" not in data and "\r" not in data
    assert ":" not in prop and "," not in prop and "\n" not in prop
    assert unescape_github(data) == text
    assert unescape_github(prop) == text


def test_a_table_of_many_suites_shows_the_failing_ones_first_and_the_rest_as_one_row() -> None:
    suites = tuple(
        SuiteSummary(f"n{i:03d}", 2, 1 if i in (7, 250) else 0, 0, 0, 0.5, ()) for i in range(300)
    )
    many = ResultsSummary(
        tests=600,
        failures=2,
        errors=0,
        skipped=0,
        time=150.0,
        suites=suites,
        failed=(),
        files=(),
        output=None,
    )
    lines = render_table(many).splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["n007", "n250", "(298"]
    assert lines[4].split()[3:6] == ["596", "596", "0"]
    assert len(lines) == 7
    markdown = render_markdown(many)
    assert "| (298 passing suites) | 596 | 596 | 0 | 0 | 0 | 149.0s |" in markdown
