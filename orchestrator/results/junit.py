"""Collecting the JUnit XML a build's notebooks wrote into one report for the CI.

This module owns reading untrusted JUnit XML safely, naming suites per notebook, merging them
(plus synthesized failures for tasks that ended without XML) into one file for Azure DevOps'
PublishTestResults and GitHub test reporters, and the typed :class:`ResultsSummary` that
:mod:`orchestrator.results.publish` publishes.

* Every ``*.xml`` under the results folder (the caller downloads it from storage) is parsed with
  defusedxml: entity declarations and external entities are refused. A refused, malformed or
  non-JUnit file becomes an *error test case* naming the file; it never stops the collection.
* Each file's test cases go into one suite per notebook: ``suite_names`` maps a file or a folder
  (relative POSIX path, nearest match wins) to the name; otherwise a file in a sub-folder is named
  after its top folder (``run_pytest/junit.xml`` -> ``run_pytest``, the per-task results folder
  of the job template) and a file at the top after its stem. A case without a classname gets its
  original suite's name, so nothing is lost by the merge. Terminal colour codes (pytest writes
  them as ``#x1B[31m``) are removed from failure messages and traces.
* The merged file is written atomically (``mkstemp`` + ``os.replace``).

junitparser and defusedxml are imported inside the functions that use them.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from orchestrator.files import write_atomically

__all__ = [
    "FailedCase",
    "ResultsSummary",
    "SuiteSummary",
    "SyntheticFailure",
    "SyntheticPass",
    "SyntheticSkip",
    "collect_results",
    "synthesize_failure",
]

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_DETAILS = 64 * 1024
MAX_MESSAGE = 1024

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")
_ESCAPED_ANSI = re.compile(r"#x1B\[[0-?]*[ -/]*[@-~]")  # pytest's rendering of ANSI colours
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class SyntheticFailure:
    """A failing test case standing in for a task that ended without writing JUnit XML."""

    suite: str
    name: str
    message: str
    details: str
    time: float | None = None


@dataclass(frozen=True)
class SyntheticSkip:
    """A skipped test case: a task that did not run (an upstream task failed)."""

    suite: str
    name: str
    message: str


@dataclass(frozen=True)
class SyntheticPass:
    """A passing test case standing in for a task that ended SUCCESS without JUnit XML."""

    suite: str
    name: str
    time: float | None
    details: str


@dataclass(frozen=True)
class FailedCase:
    suite: str
    classname: str | None
    name: str
    kind: Literal["failure", "error"]
    message: str
    details: str


@dataclass(frozen=True)
class SuiteSummary:
    name: str
    tests: int
    failures: int
    errors: int
    skipped: int
    time: float
    sources: tuple[str, ...]

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


@dataclass(frozen=True)
class ResultsSummary:
    tests: int
    failures: int
    errors: int
    skipped: int
    time: float
    suites: tuple[SuiteSummary, ...]
    failed: tuple[FailedCase, ...]
    files: tuple[str, ...]
    output: Path | None

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped

    def counts(self) -> dict[str, int]:
        """The totals: tests, failures, errors, skipped."""
        return {
            "tests": self.tests,
            "failures": self.failures,
            "errors": self.errors,
            "skipped": self.skipped,
        }

    @property
    def ok(self) -> bool:
        """No failure and no error (an empty result is ok here; the caller decides)."""
        return self.failures == 0 and self.errors == 0


def synthesize_failure(
    task_key: str,
    error: str,
    trace: str | None,
    run_url: str | None,
    *,
    suite: str | None = None,
) -> SyntheticFailure:
    """The failing test case for ``task_key``, which ended (timeout, crash, cancel, cluster
    lost...) without JUnit XML; it carries the error, the trace and the run URL.
    """
    message = error.strip() or "the task ended without writing test results"
    details = [message]
    if trace and trace.strip():
        details += ["", trace.rstrip()]
    if run_url:
        details += ["", f"Run: {run_url}"]
    first_line = message.splitlines()[0] if message else ""
    if run_url:
        first_line = f"{first_line} (run: {run_url})"
    return SyntheticFailure(
        suite=suite or task_key,
        name=f"{task_key} (task ended without test results)",
        message=first_line,
        details="\n".join(details),
    )


def collect_results(
    *,
    results_dir: Path,
    output: Path,
    suite_names: Mapping[str, str] | None = None,
    synthesized: Sequence[SyntheticFailure | SyntheticPass | SyntheticSkip] = (),
    max_file_bytes: int = MAX_FILE_BYTES,
) -> ResultsSummary:
    """Merge every JUnit file under ``results_dir`` (+ ``synthesized``) into ``output``."""
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    suites: dict[str, Any] = {}
    sources: dict[str, list[str]] = {}

    def suite_for(name: str, source: str) -> Any:
        if name not in suites:
            suites[name] = TestSuite(_text(name))
            sources[name] = []
        if source not in sources[name]:
            sources[name].append(source)
        return suites[name]

    files: list[str] = []
    for path, relative in _junit_files(results_dir):
        files.append(relative)
        name = _suite_name(relative, suite_names or {})
        target = suite_for(name, relative)
        try:
            cases = list(_read_cases(path, max_file_bytes))
        except _Unreadable as exc:
            case = TestCase(f"{relative} (unreadable test results)", classname="orchestrator")
            case.result = [Error(_text(f"{relative}: {exc}", MAX_MESSAGE), "InvalidJUnitXml")]
            target.append(case)
            continue
        for case in cases:
            target.append(case)

    for synthetic in synthesized:
        case = TestCase(_text(synthetic.name), classname=_text(synthetic.suite))
        if isinstance(synthetic, SyntheticPass):
            case.time = round(synthetic.time or 0.0, 3)
            case.system_out = _text(synthetic.details, MAX_DETAILS)
            suite_for(synthetic.suite, "<task outcome>").append(case)
            continue
        if isinstance(synthetic, SyntheticSkip):
            case.result = [Skipped(_text(synthetic.message, MAX_MESSAGE))]
            suite_for(synthetic.suite, "<task outcome>").append(case)
            continue
        failure = Failure(_text(synthetic.message, MAX_MESSAGE), "TaskEndedWithoutResults")
        failure.text = _text(synthetic.details, MAX_DETAILS)
        case.result = [failure]
        if synthetic.time is not None:
            case.time = round(synthetic.time, 3)
        suite_for(synthetic.suite, "<synthesized>").append(case)

    merged: Any = JUnitXml("orchestrator")
    for suite in suites.values():
        merged.add_testsuite(suite)
    merged.update_statistics()
    _write_atomically(merged, output)
    return _summarize(merged, sources, files, output)


class _Unreadable(Exception):
    """A results file that is not safe, well-formed JUnit XML."""


def _junit_files(results_dir: Path) -> Iterator[tuple[Path, str]]:
    if not results_dir.is_dir():
        return
    for path in sorted(results_dir.rglob("*")):
        if path.suffix.lower() != ".xml":
            continue
        if path.is_symlink() or not path.is_file():
            log.warning("ignoring %s: not a regular file", path)
            continue
        yield path, path.relative_to(results_dir).as_posix()


def _suite_name(relative: str, names: Mapping[str, str]) -> str:
    path = PurePosixPath(relative)
    for candidate in (path, *path.parents):
        key = candidate.as_posix()
        if key in names:
            return names[key]
    if len(path.parts) > 1:
        return path.parts[0]
    return path.stem


def _read_cases(path: Path, max_bytes: int) -> Iterator[Any]:
    """Parse ``path`` safely and yield its test cases, classnames filled in, times sanitized."""
    from xml.etree.ElementTree import ParseError

    import defusedxml
    import defusedxml.ElementTree
    from junitparser import JUnitXml, JUnitXmlError

    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _Unreadable(f"the file is larger than {max_bytes} bytes ({size})")
        data = path.read_bytes()
    except OSError as exc:
        raise _Unreadable(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        root = defusedxml.ElementTree.fromstring(
            data, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except defusedxml.EntitiesForbidden:
        raise _Unreadable("refused: the file declares XML entities") from None
    except defusedxml.ExternalReferenceForbidden:
        raise _Unreadable("refused: the file references external entities") from None
    except defusedxml.DefusedXmlException as exc:
        raise _Unreadable(f"refused: {type(exc).__name__}") from None
    except (ParseError, ValueError) as exc:
        raise _Unreadable(f"malformed XML: {exc}") from None
    try:
        document = JUnitXml.fromroot(root)
    except JUnitXmlError:
        raise _Unreadable(f"not JUnit XML (root element <{_text(str(root.tag), 80)}>)") from None
    for original in document:
        yield from _cases_of(original)


def _cases_of(suite: Any) -> Iterator[Any]:
    for case in suite:
        if not case.classname and suite.name:
            case.classname = suite.name
        for result in case.result:
            if result.message and "#x1B[" in result.message:
                result.message = _ESCAPED_ANSI.sub("", result.message)
            if result.text and "#x1B[" in result.text:
                result.text = _ESCAPED_ANSI.sub("", result.text)
        time = case._elem.get("time")  # a bad value would break junitparser's statistics
        if time is not None:
            try:
                value = float(time.replace(",", "."))
                case._elem.set("time", f"{value:.3f}")
            except ValueError:
                del case._elem.attrib["time"]
        yield case


def _text(value: str, limit: int | None = None) -> str:
    """Text safe for XML 1.0: ANSI colours removed, other forbidden characters replaced."""
    text = _NOT_XML.sub("\ufffd", _ANSI.sub("", value))
    if limit is not None and len(text) > limit:
        head = limit // 4
        tail = limit - head
        cut = len(text) - head - tail
        text = f"{text[:head]}\n... [{cut} characters cut] ...\n{text[-tail:]}"
    return text


def _write_atomically(document: Any, output: Path) -> None:
    from xml.etree import ElementTree

    ElementTree.indent(document._elem)
    buffer = io.BytesIO()
    document.write(buffer)
    write_atomically(output, buffer.getvalue())


def _summarize(
    merged: Any, sources: Mapping[str, list[str]], files: list[str], output: Path
) -> ResultsSummary:
    from junitparser import Error, Failure

    summaries: list[SuiteSummary] = []
    failed: list[FailedCase] = []
    for (name, suite_sources), suite in zip(sources.items(), merged, strict=True):
        summaries.append(
            SuiteSummary(
                name=name,
                tests=int(suite.tests or 0),
                failures=int(suite.failures or 0),
                errors=int(suite.errors or 0),
                skipped=int(suite.skipped or 0),
                time=float(suite.time or 0.0),
                sources=tuple(suite_sources),
            )
        )
        for case in suite:
            for result in case.result:
                if isinstance(result, Failure | Error):
                    kind: Literal["failure", "error"] = (
                        "failure" if isinstance(result, Failure) else "error"
                    )
                    details = result.text or ""
                    message = result.message or (details.strip().splitlines() or [""])[0]
                    failed.append(
                        FailedCase(
                            suite=name,
                            classname=case.classname,
                            name=case.name or "",
                            kind=kind,
                            message=message,
                            details=details,
                        )
                    )
    return ResultsSummary(
        tests=int(merged.tests or 0),
        failures=int(merged.failures or 0),
        errors=int(merged.errors or 0),
        skipped=int(merged.skipped or 0),
        time=float(merged.time or 0.0),
        suites=tuple(summaries),
        failed=tuple(failed),
        files=tuple(files),
        output=output,
    )
