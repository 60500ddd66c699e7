"""Every task's outcome counts: the test case a task stands for when its JUnit XML does not
tell the whole story.

* A task that ended SUCCESS without XML is one passing case (its duration, a link to its run),
  unless JUnit is required for it (``junit.required``/``junit.required_tasks``): then it is a
  failure, as is any task that ended otherwise without XML.
* A failed task is a failing case that names where it failed, as the user knows it: the
  notebook (relative to the build), the cell as the notebook UI numbers it, its first lines,
  the exception, the frames of the user's code (:class:`FailurePoint`, traced through the
  ephemeral runs of ``dbutils.notebook.run`` by the collect step), then the lines that explain
  it (:func:`explaining_lines`) and a bounded tail of the output.
* A task that did not run because an upstream task failed is a skipped case.
* A task with XML reports its cases; one that failed although its XML shows no failure gets a
  failing case saying so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from orchestrator.results.framework_output import FrameworkRun, read_framework_run
from orchestrator.results.junit import SyntheticFailure, SyntheticPass, SyntheticSkip

__all__ = [
    "FailurePoint",
    "TaskOutcome",
    "explaining_lines",
    "failing_tests",
    "outcome_case",
    "outcome_cases",
    "user_frames",
]

Case = SyntheticFailure | SyntheticPass | SyntheticSkip

TAIL_LINES = 15
SOURCE_LINES = 3
_FAILING = (
    re.compile(r"^(?:FAILED|ERROR) (\S+)(?: - .*)?$"),  # pytest's short test summary
    re.compile(r"^\W*(?:Failure|Error) \([^)]*\): (.+?)\W*$"),  # testthat
    re.compile(r"^(?:FAIL|ERROR): (\S+ \([^)]*\))$"),  # unittest
)
#: lines that say why, whatever else the output holds
_EXPLAINING = (
    re.compile(r"^(?:FAILED|ERROR) \S+"),  # pytest's short test summary
    re.compile(r"^\s*ERROR: .+"),  # pip, at any indent (a build's subprocess indents it)
    re.compile(r"^Error(?: in .+)?: ?.*"),  # R
    re.compile(r"^── (?:Failure|Error) .*"),  # testthat's failure headers
    re.compile(r"^\W*(?:Failure|Error) \([^)]*\): .+"),  # testthat (older layout)
    re.compile(r"^(?:FAIL|ERROR): \S+ \([^)]*\)$"),  # unittest
    re.compile(r"^\[ FAIL \d+ \| WARN \d+ \| SKIP \d+ \| PASS \d+ \]$"),  # testthat's tally
    re.compile(r"^=+ .*(?:failed|error).* =+$"),  # pytest's final line
)
#: frames of the machinery around the user's code
_MACHINERY = re.compile(
    r"site-packages/(?:IPython|ipykernel|zmq|tornado|jupyter_client|pyspark)/|"
    r"/lib/python3\.\d+/|orchestrator/local/kernel/|<frozen |py4j"
)
_CELL_FRAME = re.compile(r"Cell In\[(\d+)\]")
#: a source line of a traceback frame: "----> 3     raise ValueError(...)" or "      2 x = 1"
_CODE = re.compile(r"^\s*(?:-*>\s*)?\d+\s(.*\S)\s*$")


@dataclass(frozen=True)
class FailurePoint:
    """Where a task failed: the user's notebook, cell and exception."""

    notebook: str  # as the user knows it: relative to the build folder when inside it
    cell: int | None  # as the notebook UI numbers it (its place, from 1)
    cell_source: str  # its first lines
    error: str  # "ExceptionType: message"
    trace: str  # the frames of the user's code
    run_url: str | None = None  # the run that executed that notebook
    through: tuple[str, ...] = ()  # the notebooks the failure came through, outermost first

    def where(self) -> str:
        cell = f", cell {self.cell}" if self.cell is not None else ""
        return f"{self.notebook}{cell}"


@dataclass(frozen=True)
class TaskOutcome:
    """What a build knows of one task at the end of its run."""

    task_key: str
    result: str | None  # the run's result state: SUCCESS, FAILED, TIMEDOUT, CANCELED...
    seconds: float | None
    run_url: str | None
    has_junit: bool
    junit_failed: bool = False  # its XML holds a failure or an error
    error: str = ""  # why the task ended (its run's error, or the platform's)
    failure: FailurePoint | None = None
    output: str = ""  # what the notebook printed up to its failing cell, cleaned
    upstream: str | None = None  # why it did not run: "upstream task a failed"

    @property
    def succeeded(self) -> bool:
        return self.result == "SUCCESS"


def outcome_case(
    outcome: TaskOutcome, *, junit_required: bool
) -> SyntheticFailure | SyntheticPass | SyntheticSkip | None:
    """The test case ``outcome`` adds to the report, or None when its XML says it all."""
    key = outcome.task_key
    if outcome.upstream is not None:
        return SyntheticSkip(suite=key, name=key, message=f"not run: {outcome.upstream}")
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


def outcome_cases(outcome: TaskOutcome, *, junit_required: bool) -> list[Case]:
    """The test cases ``outcome`` adds to the report: those a framework that wrote no JUnit
    printed the counts of (:mod:`.framework_output`), else :func:`outcome_case`'s one."""
    run = None
    if not outcome.has_junit and outcome.upstream is None:
        run = read_framework_run(outcome.output)
    if run is None or run.passed + run.failed + run.skipped == 0:
        case = outcome_case(outcome, junit_required=junit_required)
        return [case] if case is not None else []
    cases = _framework_cases(outcome, run)
    if run.failed == 0 and not outcome.succeeded:  # it failed for another reason as well
        cases.append(_failure(outcome, f"{outcome.task_key} (task failed)"))
    if junit_required:
        error = f"task ended without writing test results (JUnit required for {outcome.task_key})"
        cases.append(_failure(replace(outcome, error=error), f"{outcome.task_key} (no JUnit)"))
    return cases


def _framework_cases(outcome: TaskOutcome, run: FrameworkRun) -> list[Case]:
    """One case per test (per expectation for testthat) the framework counted, the failing
    ones by the names it printed; every case says it was counted from the output."""
    key = outcome.task_key
    unit = "test" if run.counts_tests else "expectation"
    origin = f"counted from the {run.framework} output (it wrote no JUnit)"
    where = f" ({outcome.failure.where()})" if outcome.failure is not None else ""
    why = explaining_lines(outcome.output)
    run_line = [f"Run: {outcome.run_url}"] if outcome.run_url else []
    cases: list[Case] = []
    names = list(run.failing[: run.failed])
    names += [f"failing {unit} {n}" for n in range(len(names) + 1, run.failed + 1)]
    for name in names:
        mine = [line for line in why if name in line] or why[:5]
        details = "\n".join([origin, *mine, *run_line])
        message = f"{name} failed{where}"
        cases.append(SyntheticFailure(suite=key, name=name, message=message, details=details))
    details = "\n".join([origin, *run_line])
    cases += [
        SyntheticPass(suite=key, name=f"passed {unit} {n}", time=None, details=details)
        for n in range(1, run.passed + 1)
    ]
    cases += [
        SyntheticSkip(suite=key, name=f"skipped {unit} {n}", message=origin)
        for n in range(1, run.skipped + 1)
    ]
    if cases and isinstance(cases[0], SyntheticFailure | SyntheticPass):  # the suite's time
        cases[0] = replace(cases[0], time=outcome.seconds)
    return cases


def _message(outcome: TaskOutcome) -> str:
    """The case's one-line message: the failing tests, else the exception, else the error;
    then where it failed (notebook and cell), when known."""
    failing = failing_tests(outcome.output)
    point = outcome.failure
    if failing:
        more = f" and {len(failing) - 5} more" if len(failing) > 5 else ""
        text = f"failing: {', '.join(failing[:5])}{more}"
    elif point is not None and point.error:
        text = point.error.splitlines()[0]
    else:
        error = outcome.error.strip() or f"task ended {outcome.result or 'without a result'}"
        text = error.splitlines()[0]
    return f"{text} ({point.where()})" if point is not None else text


def _failure(outcome: TaskOutcome, name: str) -> SyntheticFailure:
    message = _message(outcome)
    details: list[str] = []
    point = outcome.failure
    if point is not None:
        details.append(f"Failed in {point.where()}")
        if point.through:
            details.append(f"  through {' -> '.join(point.through)}")
        if point.cell_source:
            details += [f"  > {line}" for line in point.cell_source.splitlines()]
        if point.error:
            details.append(point.error)
    elif outcome.error:
        details.append(outcome.error.strip())
    explaining = [line for line in explaining_lines(outcome.output) if line not in details]
    if explaining:
        details += ["", *explaining]
    tail = [line for line in outcome.output.splitlines()[-TAIL_LINES:] if line not in explaining]
    if tail:
        details += ["", f"Output (last {len(tail)} lines):", *tail]
    if point is not None and point.trace:
        details += ["", "Traceback (the user's code):", point.trace]
    run_url = (point.run_url if point is not None else None) or outcome.run_url
    if run_url:
        details += ["", f"Run: {run_url}"]
    # the task's own error, unless it only says a notebook the failure came through failed
    told = outcome.error.strip() in "\n".join(details)
    if outcome.error and point is not None and not told and not point.through:
        details += [f"Task error: {outcome.error.strip()}"]
    return SyntheticFailure(
        suite=outcome.task_key,
        name=name,
        message=message,
        details="\n".join(details),
        time=outcome.seconds,
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


def explaining_lines(output: str, limit: int = 15) -> list[str]:
    """The lines of ``output`` that say why (pytest's summary, pip's and R's errors, testthat's
    failures, unittest's headers), in order, once each, at most ``limit``."""
    found: list[str] = []
    for line in output.splitlines():
        text = line.rstrip()
        if text.strip() and any(p.match(text) for p in _EXPLAINING):
            text = text.strip()
            if text not in found:
                found.append(text)
    return found[:limit]


def user_frames(trace: str, *, cell: int | None = None, cells: Sequence[str] = ()) -> str:
    """A traceback without the frames of the machinery around the user's code (IPython,
    ipykernel, the standard library, the local workspace's shims), with each cell named as
    the notebook UI numbers it: IPython's ``Cell In[n]`` counts executions, so the first is
    the failing ``cell``, and another is the cell of ``cells`` (the notebook's sources, in
    order) that holds the frame's source line."""
    lines = trace.rstrip().splitlines()
    kept: list[str] = []
    skipping = False
    first_cell: str | None = None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("File ", "Cell In[")):
            skipping = bool(_MACHINERY.search(stripped))
            match = _CELL_FRAME.search(stripped)
            if match and first_cell is None:
                first_cell = match.group(1)
        if not skipping:
            kept.append(line)
    names: dict[str, str] = {}
    if cell is not None and first_cell is not None:
        names[first_cell] = f"cell {cell}"
    for index, line in enumerate(kept):
        match = _CELL_FRAME.search(line.strip())
        if match is None or match.group(1) in names or not cells:
            continue
        code = [m.group(1) for later in kept[index + 1 : index + 8] if (m := _CODE.match(later))]
        found = [n for n, source in enumerate(cells, start=1) if code and code[-1] in source]
        if found:
            names[match.group(1)] = f"cell {found[-1]}"
    text = "\n".join(kept)
    for number, name in names.items():
        text = text.replace(f"Cell In[{number}]", name)
    return text
