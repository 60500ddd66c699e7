"""Collecting JUnit XML: safe parsing, suites per notebook, merging, synthesized failures."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from junitparser import JUnitXml

from orchestrator.results.junit import ResultsSummary, collect_results, synthesize_failure

PYTEST_XML = """\
<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4" time="1.5">
    <testcase classname="test_model" name="test_predicts_shape" time="0.25"/>
    <testcase classname="test_model" name="test_predicts_values" time="0.5">
      <failure message="AssertionError: assert 0.71 &gt; 0.8">def test_predicts_values():
&gt;       assert score &gt; 0.8
E       AssertionError: assert 0.71 &gt; 0.8</failure>
    </testcase>
    <testcase classname="test_data" name="test_loads" time="0.75"/>
    <testcase classname="test_data" name="test_later" time="0"><skipped message="todo"/></testcase>
  </testsuite>
</testsuites>
"""

TESTTHAT_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="testthat" tests="3" skipped="0" failures="0" errors="0" time="0.3">
  <testsuite name="clean_data" timestamp="2026-05-23T10:15:00" hostname="local" tests="2"
      skipped="0" failures="0" errors="0" time="0.2">
    <testcase time="0.1" classname="clean_data" name="drops_missing_rows"/>
    <testcase time="0.1" classname="clean_data" name="keeps_columns"/>
  </testsuite>
  <testsuite name="features" tests="1" skipped="0" failures="0" errors="0" time="0.1">
    <testcase time="0.1" name="scales_to_unit_range"/>
  </testsuite>
</testsuites>
"""

BILLION_LAUGHS = """\
<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<testsuite name="x"><testcase name="y"><failure message="&lol3;"/></testcase></testsuite>
"""


def put(folder: Path, relative: str, text: str) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def collect(results: Path, output: Path, **kwargs: object) -> ResultsSummary:
    return collect_results(results_dir=results, output=output, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "results", tmp_path / "test-results" / "junit.xml"


def suite_by_name(summary: ResultsSummary) -> dict[str, tuple[int, int, int, int]]:
    return {s.name: (s.tests, s.failures, s.errors, s.skipped) for s in summary.suites}


# -- merging ----------------------------------------------------------------------------------


def test_pytest_and_testthat_results_merge_into_one_suite_per_task(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "run_pytest/junit.xml", PYTEST_XML)
    put(results, "run_testthat/junit.xml", TESTTHAT_XML)
    summary = collect(results, output)
    assert suite_by_name(summary) == {"run_pytest": (4, 1, 0, 1), "run_testthat": (3, 0, 0, 0)}
    assert (summary.tests, summary.failures, summary.errors, summary.skipped) == (7, 1, 0, 1)
    assert summary.passed == 5
    assert not summary.ok
    assert summary.files == ("run_pytest/junit.xml", "run_testthat/junit.xml")
    assert summary.output == output


def test_the_merged_file_is_junit_that_a_ci_reads_back(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "run_pytest/junit.xml", PYTEST_XML)
    put(results, "run_testthat/junit.xml", TESTTHAT_XML)
    collect(results, output)
    merged = JUnitXml.fromfile(str(output))
    assert [s.name for s in merged] == ["run_pytest", "run_testthat"]
    assert (merged.tests, merged.failures) == (7, 1)
    cases = {(c.classname, c.name) for s in merged for c in s}
    assert ("test_model", "test_predicts_values") in cases
    assert ("features", "scales_to_unit_range") in cases  # classname filled from its suite


def test_failing_cases_carry_their_message_and_details(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "run_pytest/junit.xml", PYTEST_XML)
    (case,) = collect(results, output).failed
    assert case.suite == "run_pytest"
    assert (case.classname, case.name, case.kind) == (
        "test_model",
        "test_predicts_values",
        "failure",
    )
    assert case.message == "AssertionError: assert 0.71 > 0.8"
    assert "assert score > 0.8" in case.details


def test_suite_names_can_be_mapped_by_file_or_folder(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "run_pytest/junit.xml", PYTEST_XML)
    put(results, "r/testthat.xml", TESTTHAT_XML)
    names = {"run_pytest": "tests/run_pytest", "r/testthat.xml": "tests/run_testthat"}
    summary = collect(results, output, suite_names=names)
    assert sorted(s.name for s in summary.suites) == ["tests/run_pytest", "tests/run_testthat"]


def test_a_file_at_the_top_is_named_after_its_stem(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "model_tests.xml", PYTEST_XML)
    assert [s.name for s in collect(results, output).suites] == ["model_tests"]


def test_two_files_of_one_task_share_its_suite(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "run_pytest/part1.xml", PYTEST_XML)
    put(results, "run_pytest/part2.xml", PYTEST_XML)
    (suite,) = collect(results, output).suites
    assert (suite.tests, suite.sources) == (8, ("run_pytest/part1.xml", "run_pytest/part2.xml"))


def test_a_single_testsuite_root_and_nested_suites_are_read(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(
        results,
        "t/one.xml",
        '<testsuite name="outer"><testsuite name="inner"><testcase name="a"/></testsuite>'
        '<testcase name="b"/></testsuite>',
    )
    assert suite_by_name(collect(results, output)) == {"t": (2, 0, 0, 0)}


def test_unparseable_times_do_not_break_the_counts(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(
        results,
        "t/x.xml",
        '<testsuite><testcase name="a" time="soon"/><testcase name="b" time="1,5"/></testsuite>',
    )
    (suite,) = collect(results, output).suites
    assert (suite.tests, suite.time) == (2, 1.5)


def test_colour_codes_pytest_escaped_into_the_xml_are_removed(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(
        results,
        "run_pytest/junit.xml",
        '<testsuite name="pytest"><testcase classname="m" name="t">'
        '<failure message="#x1B[31mboom#x1B[0m">#x1B[1m#x1B[31mE   assert 1#x1B[0m</failure>'
        "</testcase></testsuite>",
    )
    (case,) = collect(results, output).failed
    assert (case.message, case.details) == ("boom", "E   assert 1")
    assert "#x1B" not in output.read_text()


def test_no_results_folder_gives_an_empty_report(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    summary = collect(results, output)
    assert (summary.tests, summary.suites, summary.ok) == (0, (), True)
    assert JUnitXml.fromfile(str(output)).tests == 0


# -- untrusted input --------------------------------------------------------------------------


def error_case_of(summary: ResultsSummary) -> tuple[str, str]:
    (case,) = summary.failed
    assert case.kind == "error"
    return case.name, case.message


def test_entity_expansion_becomes_an_error_case_naming_the_file(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "run_pytest/bomb.xml", BILLION_LAUGHS)
    summary = collect(results, output)
    name, message = error_case_of(summary)
    assert "run_pytest/bomb.xml" in name
    assert message == "run_pytest/bomb.xml: refused: the file declares XML entities"
    assert summary.errors == 1
    assert "lollol" not in output.read_text()


def test_external_entities_are_refused_and_never_read(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    results, output = dirs
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    put(
        results,
        "run_pytest/xxe.xml",
        f'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<testsuite name="s"><testcase name="c"><failure message="&x;"/></testcase></testsuite>',
    )
    summary = collect(results, output)
    _, message = error_case_of(summary)
    assert "refused" in message
    assert "TOP-SECRET-VALUE" not in output.read_text()


def test_malformed_xml_becomes_an_error_case(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "run_pytest/junit.xml", PYTEST_XML)
    put(results, "run_testthat/junit.xml", "<testsuites><testsuite name='x'>")
    summary = collect(results, output)
    assert suite_by_name(summary) == {"run_pytest": (4, 1, 0, 1), "run_testthat": (1, 0, 1, 0)}
    error = next(c for c in summary.failed if c.kind == "error")
    assert error.message.startswith("run_testthat/junit.xml: malformed XML: ")


def test_xml_that_is_not_junit_becomes_an_error_case(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "t/pom.xml", "<project><version>1</version></project>")
    _, message = error_case_of(collect(results, output))
    assert message == "t/pom.xml: not JUnit XML (root element <project>)"


def test_an_oversized_file_is_not_read(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "t/big.xml", PYTEST_XML)
    _, message = error_case_of(collect(results, output, max_file_bytes=100))
    assert "larger than 100 bytes" in message


def test_symlinks_in_the_results_are_ignored(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    results, output = dirs
    outside = put(tmp_path, "elsewhere/junit.xml", PYTEST_XML)
    (results / "t").mkdir(parents=True)
    (results / "t" / "link.xml").symlink_to(outside)
    assert collect(results, output).tests == 0


# -- synthesized failures ---------------------------------------------------------------------


def test_a_synthesized_failure_carries_error_trace_and_run_url() -> None:
    failure = synthesize_failure(
        "run_testthat",
        "Notebook exited: Error in library(x): no package called 'x'",
        "Traceback\n  at cell 3",
        "https://adb-1.azuredatabricks.net/#job/1/run/2",
    )
    assert failure.suite == "run_testthat"
    assert failure.name == "run_testthat (task ended without test results)"
    assert failure.message.startswith("Notebook exited: Error in library(x)")
    assert failure.message.endswith("(run: https://adb-1.azuredatabricks.net/#job/1/run/2)")
    assert "at cell 3" in failure.details
    assert failure.details.endswith("Run: https://adb-1.azuredatabricks.net/#job/1/run/2")


def test_a_synthesized_failure_without_details_still_says_what_happened() -> None:
    failure = synthesize_failure("run_pytest", "", None, None, suite="tests/run_pytest")
    assert failure.suite == "tests/run_pytest"
    assert failure.message == "the task ended without writing test results"


def test_synthesized_failures_join_the_report_as_failing_cases(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    put(results, "run_pytest/junit.xml", PYTEST_XML)
    lost = synthesize_failure("run_testthat", "Run timed out", "trace", "https://run/9")
    summary = collect(results, output, synthesized=[lost])
    assert suite_by_name(summary)["run_testthat"] == (1, 1, 0, 0)
    assert summary.failures == 2
    merged = JUnitXml.fromfile(str(output))
    case = next(c for s in merged if s.name == "run_testthat" for c in s)
    (result,) = case.result
    assert result.message == "Run timed out (run: https://run/9)"
    assert "trace" in (result.text or "")


def test_terminal_colours_and_control_characters_cannot_corrupt_the_xml(
    dirs: tuple[Path, Path],
) -> None:
    results, output = dirs
    noisy = synthesize_failure("t", "\x1b[31mError\x1b[0m: bad\x00byte\x07", "\x1b[1mtrace", None)
    collect(results, output, synthesized=[noisy])
    (case,) = [c for s in JUnitXml.fromfile(str(output)) for c in s]
    (result,) = case.result
    assert result.message == "Error: bad\ufffdbyte\ufffd"
    assert result.text is not None and "\x1b" not in result.text


def test_very_long_traces_are_cut_in_the_middle(dirs: tuple[Path, Path]) -> None:
    results, output = dirs
    trace = "HEAD\n" + "x" * 200_000 + "\nTAIL"
    collect(results, output, synthesized=[synthesize_failure("t", "boom", trace, None)])
    text = output.read_text()
    assert "HEAD" in text and "TAIL" in text and "characters cut" in text
    assert len(text) < 100_000


# -- writing ----------------------------------------------------------------------------------


def test_the_report_replaces_an_old_one_and_leaves_no_temporary_files(
    dirs: tuple[Path, Path],
) -> None:
    results, output = dirs
    output.parent.mkdir(parents=True)
    output.write_text("old")
    put(results, "run_pytest/junit.xml", PYTEST_XML)
    collect(results, output)
    assert os.listdir(output.parent) == ["junit.xml"]
    assert output.read_text().startswith("<?xml")


def test_a_failed_write_leaves_the_old_report_and_no_temporary_files(
    dirs: tuple[Path, Path],
) -> None:
    results, output = dirs
    output.mkdir(parents=True)  # a folder where the file should go: os.replace must fail
    with pytest.raises(OSError):
        collect(results, output)
    assert os.listdir(output.parent) == ["junit.xml"]
    assert output.is_dir()
