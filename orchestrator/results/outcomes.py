"""Every task's outcome counts: the test case a task stands for when its JUnit XML does not
tell the whole story.

* A task that ended SUCCESS without XML is one passing case (its duration, a link to its run),
  unless JUnit is required for it (``junit.required``/``junit.required_tasks``): then it is a
  failure, as is any task that ended otherwise without XML.
* A failed task is a failing case with its error, the failing cell (the error trace), the
  failing tests named in its output (pytest's and testthat's summaries, unittest's) and the
  tail of that output, taken from the executed notebook's export.
* A task with XML reports its cases; one that failed although its XML shows no failure gets a
  failing case saying so.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace

from orchestrator.results.junit import SyntheticFailure, SyntheticPass

__all__ = ["TaskOutcome", "failing_tests", "outcome_case", "output_text"]

OUTPUT_TAIL_LINES = 60
_PRE = re.compile(r"<pre(\s[^>]*)?>(.*?)</pre>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_CODE_STYLE = "background:"
_FAILING = (
    re.compile(r"^(?:FAILED|ERROR) (\S+)(?: - .*)?$"),  # pytest's short test summary
    re.compile(r"^\W*(?:Failure|Error) \([^)]*\): (.+?)\W*$"),  # testthat
    re.compile(r"^(?:FAIL|ERROR): (\S+ \([^)]*\))$"),  # unittest
)


@dataclass(frozen=True)
class TaskOutcome:
    """What a build knows of one task at the end of its run."""

    task_key: str
    result: str | None  # the run's result state: SUCCESS, FAILED, TIMEDOUT, CANCELED...
    seconds: float | None
    run_url: str | None
    has_junit: bool
    junit_failed: bool = False  # its XML holds a failure or an error
    error: str = ""
    trace: str | None = None
    output: str = ""  # the text the notebook printed, as far as the export shows it

    @property
    def succeeded(self) -> bool:
        return self.result == "SUCCESS"


def outcome_case(
    outcome: TaskOutcome, *, junit_required: bool
) -> SyntheticFailure | SyntheticPass | None:
    """The test case ``outcome`` adds to the report, or None when its XML says it all."""
    key = outcome.task_key
    if outcome.has_junit:
        if outcome.succeeded or outcome.junit_failed:
            return None
        return _failure(outcome, f"{key} (task failed after writing test results)")
    if outcome.succeeded and not junit_required:
        details = [f"{key} ended SUCCESS (no JUnit XML: the task is the test case)"]
        details += [f"Run: {outcome.run_url}"] if outcome.run_url else []
        return SyntheticPass(suite=key, name=key, time=outcome.seconds, details="\n".join(details))
    if outcome.succeeded:
        error = f"task ended SUCCESS without writing test results (JUnit required for {key})"
        outcome = replace(outcome, error=error)
    return _failure(outcome, f"{key} (task ended without test results)")


def _failure(outcome: TaskOutcome, name: str) -> SyntheticFailure:
    error = outcome.error.strip() or f"task ended {outcome.result or 'without a result'}"
    first = error.splitlines()[0]
    failing = failing_tests(outcome.output)
    if failing:  # the tests' names first: the summary shows a message's start
        more = f" and {len(failing) - 5} more" if len(failing) > 5 else ""
        first = f"failing: {', '.join(failing[:5])}{more} - {first}"
    if outcome.run_url:
        first = f"{first} (run: {outcome.run_url})"
    details = [error]
    if failing:
        details += ["", "Failing tests (from the output):", *(f"  {t}" for t in failing)]
    tail = outcome.output.rstrip().splitlines()[-OUTPUT_TAIL_LINES:]
    if tail:
        details += ["", f"Output (last {len(tail)} lines):", *tail]
    if outcome.trace and outcome.trace.strip():
        details += ["", "Failing cell:", outcome.trace.rstrip()]
    if outcome.run_url:
        details += ["", f"Run: {outcome.run_url}"]
    return SyntheticFailure(
        suite=outcome.task_key, name=name, message=first, details="\n".join(details)
    )


def failing_tests(output: str) -> list[str]:
    """The failing tests a pytest, testthat or unittest run printed, in order, once each."""
    found: list[str] = []
    for line in output.splitlines():
        for pattern in _FAILING:
            match = pattern.match(line.strip())
            if match and match.group(1) not in found:
                found.append(match.group(1))
    return found


def output_text(export: str) -> str:
    """The printed output in an executed notebook's HTML export (code cells left out)."""
    blocks: list[str] = []
    for match in _PRE.finditer(export):
        attributes = match.group(1) or ""
        opened = export[max(0, match.start() - 200) : match.start()].rsplit("<div", 1)[-1]
        in_code = 'class="highlight' in opened and "</div>" not in opened
        if _CODE_STYLE in attributes or in_code:
            continue
        text = html.unescape(_TAG.sub("", match.group(2)))
        if "Traceback (most recent call last)" in text:
            continue  # the failing cell is reported from the error trace
        blocks.append(text.rstrip("\n"))
    return "\n".join(blocks)
