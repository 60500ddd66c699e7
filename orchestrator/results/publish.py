"""Publishing a build's test results where the CI shows them.

This module owns how a :class:`~orchestrator.results.ResultsSummary` is told: a plain-text
table everywhere; Azure DevOps logging commands when ``TF_BUILD`` is set (``##[group]``,
``##vso[task.logissue]``, ``##vso[task.complete]``); GitHub workflow commands and a Markdown
step summary (appended to ``$GITHUB_STEP_SUMMARY``) when ``GITHUB_ACTIONS`` is set; and a JSON
document for ``--json``. Output goes to the ``TextIO`` passed in; unicode stays unicode (the
CLI's streams replace what an agent's console encoding cannot show), control characters go.

A failing build fits one screen: the suite table, then for each failing test its title, its
message (once) and what explains it (:func:`console_lines`: where it failed and the lines that
say why, at most 15), then the verdict and the run's URL. The full details (output tail,
traceback) are in the JUnit report, the step summary and ``--json``. On Azure DevOps and GitHub
each failing test is one error annotation holding those same lines.

Text that comes from tests (names, messages, traces) is escaped inside commands and
neutralized outside them, so a test can never issue a logging command of its own.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from orchestrator.results.outcomes import explaining_lines

if TYPE_CHECKING:
    from orchestrator.config.context import BuildContext
    from orchestrator.results.junit import FailedCase, ResultsSummary

__all__ = [
    "Format",
    "console_lines",
    "detect_format",
    "escape_ado_data",
    "escape_ado_property",
    "escape_github_data",
    "escape_github_property",
    "failure_lines",
    "publish",
    "publish_error",
    "publish_errors",
    "publish_models",
    "publish_warning",
    "render_markdown",
    "render_table",
    "status_of",
    "to_json",
]

log = logging.getLogger(__name__)

Format = Literal["azure-devops", "github-actions", "plain"]
Status = Literal["passed", "failed", "empty"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_CONSOLE_LINES = 15  # what explains a failing test, on the console and in its annotation
_CONSOLE_FAILURES = 20  # failing tests the console details; the rest are named, one line each
_COLLAPSE_SUITES = 20  # above this many suites, the passing ones are one row
_ANNOTATION_CHARS = 4000
_SUMMARY_FAILURES = 50
_NAMED_FAILURES = 20  # failing tests named in failed_tests, the rest counted
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SECTION = ("Output (last ", "Traceback (the user's code):", "Run: ")


def detect_format(environ: Mapping[str, str]) -> Format:
    if environ.get("TF_BUILD", "").strip().lower() in _TRUE:
        return "azure-devops"
    if environ.get("GITHUB_ACTIONS", "").strip().lower() in _TRUE:
        return "github-actions"
    return "plain"


def status_of(summary: ResultsSummary) -> Status:
    if not summary.ok:
        return "failed"
    return "passed" if summary.tests else "empty"


# -- escaping ---------------------------------------------------------------------------------


def escape_ado_data(text: str) -> str:
    """The message part of an Azure DevOps ``##vso[...]`` command."""
    return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def escape_ado_property(text: str) -> str:
    """A property value of an Azure DevOps ``##vso[...]`` command."""
    return escape_ado_data(text).replace(";", "%3B").replace("]", "%5D")


def escape_github_data(text: str) -> str:
    """The message part of a GitHub ``::command::`` line."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_github_property(text: str) -> str:
    """A property value of a GitHub ``::command prop=value::`` line."""
    return escape_github_data(text).replace(":", "%3A").replace(",", "%2C")


def _safe(line: str, fmt: Format) -> str:
    """Neutralize a line of test output so a CI agent cannot read it as a command."""
    line = _printable(line)
    if fmt == "plain":
        return line
    line = _defang(line)
    if line.lstrip().startswith("::"):
        line = line.replace("::", ": :", 1)
    return line


def _defang(text: str) -> str:
    return text.replace("##vso[", "## vso[").replace("##[", "## [")


def _printable(text: str) -> str:
    """``text`` without control characters (tabs and newlines stay); unicode as it is."""
    return _CONTROL.sub("", text)


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# -- renderings -------------------------------------------------------------------------------


def _headline(summary: ResultsSummary) -> str:
    status = status_of(summary)
    if status == "empty":
        return "NO TESTS: no test results were collected"
    counts = [f"{summary.failures} failed"] if summary.failures else []
    counts += [f"{summary.errors} error{'s' * (summary.errors != 1)}"] if summary.errors else []
    counts += [f"{summary.passed} passed"]
    counts += [f"{summary.skipped} skipped"] if summary.skipped else []
    return f"{status.upper()}: {', '.join(counts)} of {summary.tests} tests"


def _case_title(case: FailedCase) -> str:
    qualified = case.classname and case.classname != case.suite
    test = f"{case.classname}.{case.name}" if qualified else case.name
    return f"{case.suite} > {test}"


def failure_lines(summary: ResultsSummary, limit: int = _NAMED_FAILURES) -> list[str]:
    """One line per failing test, ``suite > name: first message line``, at most ``limit``
    of them and then how many more."""
    lines = []
    for case in summary.failed[:limit]:
        first = (case.message.strip().splitlines() or [""])[0]
        lines.append(_one_line(f"{_case_title(case)}: {first}" if first else _case_title(case)))
    if len(summary.failed) > limit:
        lines.append(f"... and {len(summary.failed) - limit} more")
    return lines


def _table_rows(summary: ResultsSummary) -> list[tuple[object, ...]]:
    """The table's rows: suites with failures first; above :data:`_COLLAPSE_SUITES` suites
    the passing ones are one row, so a build of hundreds of notebooks stays readable."""
    ordered = sorted(summary.suites, key=lambda s: (s.failures + s.errors) == 0)
    failing = [s for s in ordered if s.failures + s.errors]
    passing = [s for s in ordered if not s.failures + s.errors]
    shown = ordered if len(ordered) <= _COLLAPSE_SUITES else failing
    rows: list[tuple[object, ...]] = [
        (s.name, s.tests, s.passed, s.failures, s.errors, s.skipped, f"{s.time:.1f}s")
        for s in shown
    ]
    if len(ordered) > _COLLAPSE_SUITES and passing:
        rows.append(
            (
                f"({len(passing)} passing suites)",
                sum(s.tests for s in passing),
                sum(s.passed for s in passing),
                0,
                0,
                sum(s.skipped for s in passing),
                f"{sum(s.time for s in passing):.1f}s",
            )
        )
    return rows


def render_table(summary: ResultsSummary) -> str:
    """The per-suite table with a total line (no trailing newline)."""
    header = ("Suite", "Tests", "Passed", "Failed", "Errors", "Skipped", "Time")
    rows = _table_rows(summary)
    total = (
        "TOTAL",
        summary.tests,
        summary.passed,
        summary.failures,
        summary.errors,
        summary.skipped,
        f"{summary.time:.1f}s",
    )
    cells = [tuple(_printable(str(c)) for c in row) for row in (header, *rows, total)]
    width = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        first = row[0].ljust(width[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(row[1:], width[1:], strict=True))])

    rule = "-" * len(line(cells[0]))
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:-1]), rule, line(cells[-1])])


def _details(case: FailedCase, limit: int) -> list[str]:
    """The message and the details of a failing test, at most ``limit`` lines, whole lines."""
    details = case.details.splitlines()
    if details and details[0] and case.message.startswith(details[0]):
        details = details[1:]  # the message already says it
    lines = [case.message, *details]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines in the JUnit report)"]
    return lines


def console_lines(case: FailedCase, limit: int = _CONSOLE_LINES) -> list[str]:
    """What explains a failing test, under its title and message: for a task's case
    (:mod:`.outcomes`), the notebooks it failed through, the failing cell's first lines, the
    lines that say why and the run of the failing notebook; for a test's own JUnit, pytest's
    ``E`` lines or the lines that say why, else its last lines. Never the message again, never
    more than ``limit`` lines, never half a line."""
    message = case.message.strip()
    error = message.rsplit(" (", 1)[0] if message.endswith(")") else message
    details = [line.rstrip() for line in case.details.splitlines()]
    if details and details[0].startswith("Failed in "):
        blocks: list[list[str]] = [[]]
        for line in details[1:]:
            if line:
                blocks[-1].append(line)
            else:
                blocks.append([])
        head = [line for line in blocks[0] if line.strip() not in (message, error)]
        why = next((b for b in blocks[1:2] if b and not b[0].startswith(_SECTION)), [])
        run = [line for line in details if line.startswith("Run: ")]
        lines = head + [line for line in why if line not in head] + run[-1:]
    else:
        pytest_lines = [line for line in details if line.startswith("E   ")]
        lines = pytest_lines or explaining_lines(case.details) or details[-8:]
        lines = [line for line in lines if line.strip() not in (message, error)]
    return lines[:limit]


def render_markdown(
    summary: ResultsSummary, *, title: str = "Test results", run_url: str | None = None
) -> str:
    """A GitHub step summary: headline, suite table, failures in collapsed blocks."""
    out = [f"## {_md(title)}: {status_of(summary).upper()}", "", _md(_headline(summary))]
    if run_url:
        out[-1] += f" - [Databricks run]({_md_url(run_url)})"
    out += ["", "| Suite | Tests | Passed | Failed | Errors | Skipped | Time |"]
    out += ["|---|---:|---:|---:|---:|---:|---:|"]
    for name, tests, passed, failures, errors, skipped, time in _table_rows(summary):
        out.append(
            f"| {_md(str(name))} | {tests} | {passed} | {failures} | {errors} "
            f"| {skipped} | {time} |"
        )
    out.append(
        f"| **Total** | {summary.tests} | {summary.passed} | {summary.failures} "
        f"| {summary.errors} | {summary.skipped} | {summary.time:.1f}s |"
    )
    named = failure_lines(summary)
    out += ["", "**Failing tests**", ""] if named else []
    out += [f"- {_md(line)}" for line in named]
    for case in summary.failed[:_SUMMARY_FAILURES]:
        body = html.escape("\n".join(_details(case, limit=120)))
        out += ["", f"<details><summary>{html.escape(_case_title(case))}</summary>", ""]
        out += [f"<pre>{body}</pre>", "</details>"]
    if len(summary.failed) > _SUMMARY_FAILURES:
        out += ["", f"... and {len(summary.failed) - _SUMMARY_FAILURES} more failing tests"]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    """Text for a Markdown table cell or line: no markup, no HTML, one line."""
    flat = _one_line(text, 300)
    for char in "\\`*_[]|~#":
        flat = flat.replace(char, f"\\{char}")
    return html.escape(flat, quote=False)


def _md_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def to_json(
    summary: ResultsSummary,
    *,
    context: BuildContext | None = None,
    run_url: str | None = None,
) -> dict[str, Any]:
    """The summary as a JSON-ready dict (what ``--json`` prints)."""
    document: dict[str, Any] = {
        "status": status_of(summary),
        "tests": summary.tests,
        "passed": summary.passed,
        "failures": summary.failures,
        "errors": summary.errors,
        "skipped": summary.skipped,
        "time": round(summary.time, 3),
        "suites": [
            {
                "name": s.name,
                "tests": s.tests,
                "passed": s.passed,
                "failures": s.failures,
                "errors": s.errors,
                "skipped": s.skipped,
                "time": round(s.time, 3),
                "sources": list(s.sources),
            }
            for s in summary.suites
        ],
        "failed": [
            {
                "suite": c.suite,
                "classname": c.classname,
                "name": c.name,
                "kind": c.kind,
                "message": c.message,
                "details": c.details,
            }
            for c in summary.failed
        ],
        "failed_tests": failure_lines(summary),
        "files": list(summary.files),
        "junit": str(summary.output) if summary.output else None,
        "run_url": run_url,
    }
    if context is not None:
        document["build"] = {
            "provider": context.provider,
            "build_id": context.build_id,
            "build_number": context.build_number,
            "repo_name": context.repo_name,
            "branch": context.branch,
            "commit": context.commit,
            "pull_request": context.pull_request,
            "url": context.url,
        }
    return document


# -- publishing -------------------------------------------------------------------------------


def publish(
    summary: ResultsSummary,
    *,
    out: TextIO,
    environ: Mapping[str, str],
    title: str = "Test results",
    run_url: str | None = None,
    max_annotations: int = 10,
) -> None:
    """Write the summary to ``out`` in the CI's own terms (see the module docstring)."""
    fmt = detect_format(environ)
    headline = _headline(summary)
    _group_start(out, fmt, f"{title}: {headline}")
    for line in render_table(summary).splitlines():
        out.write(_safe(line, fmt) + "\n")
    _group_end(out, fmt)
    for index, case in enumerate(summary.failed[:_CONSOLE_FAILURES]):
        lines = [case.message.strip(), *console_lines(case)]
        if fmt != "plain" and index < max_annotations:
            _annotate(out, fmt, "error", _case_title(case), "\n".join(lines))
            continue
        out.write(_safe(f"{case.kind.upper()} {_case_title(case)}", fmt) + "\n")
        for line in lines:
            out.write(_safe(f"    {line}", fmt) + "\n")
        out.write("\n")
    rest = summary.failed[_CONSOLE_FAILURES:]
    if rest:
        out.write(f"... and {len(rest)} more failing tests (all in the JUnit report):\n")
        for case in rest[:_NAMED_FAILURES]:
            first = (case.message.strip().splitlines() or [""])[0]
            out.write(_safe(f"  {_one_line(f'{_case_title(case)}: {first}')}", fmt) + "\n")
        if len(rest) > _NAMED_FAILURES:
            out.write(f"  ... and {len(rest) - _NAMED_FAILURES} more\n")
    if status_of(summary) == "empty":
        _annotate(out, fmt, "warning", title, "No test results were collected")
    out.write(_safe(headline, fmt) + "\n")
    if run_url:
        out.write(_safe(f"Run: {run_url}", fmt) + "\n")
    if fmt == "azure-devops" and status_of(summary) != "passed":
        result = "Failed" if status_of(summary) == "failed" else "SucceededWithIssues"
        out.write(f"##vso[task.complete result={result};]{escape_ado_data(_printable(headline))}\n")
    if fmt == "github-actions":
        markdown = render_markdown(summary, title=title, run_url=run_url)
        _append_step_summary(environ, markdown)


def publish_models(
    versions: Sequence[Mapping[str, Any]],
    *,
    out: TextIO | None,
    environ: Mapping[str, str],
    commands: TextIO | None = None,
) -> None:
    """The model versions a build registered: a line each on ``out`` (None with ``--json``,
    whose document holds them), and step outputs: Azure DevOps output variables
    (``registered_model``, ``registered_model_url``: ``setvariable`` commands on ``commands``,
    default ``out``; stderr with ``--json``), GitHub ``$GITHUB_OUTPUT`` lines of the same names
    and a step-summary section. Several versions are joined with spaces."""
    if not versions:
        return
    fmt = detect_format(environ)
    names = " ".join(f"{v['name']}/{v['version']}" for v in versions)
    urls = " ".join(str(v["url"]) for v in versions)
    if out is not None:
        for v in versions:
            alias = f" @{v['alias']}" if v.get("alias") else ""
            line = f"Registered model {v['name']} version {v['version']}{alias}: {v['url']}"
            out.write(_safe(line, fmt) + "\n")
    commands = commands if commands is not None else out
    if fmt == "azure-devops" and commands is not None:
        for variable, value in (("registered_model", names), ("registered_model_url", urls)):
            data = escape_ado_data(_printable(value))
            commands.write(f"##vso[task.setvariable variable={variable};isoutput=true]{data}\n")
    if fmt == "github-actions":
        outputs = {"registered_model": names, "registered_model_url": urls}
        _append_file(
            environ.get("GITHUB_OUTPUT"),
            "".join(f"{k}={_printable(v).replace(chr(10), ' ')}\n" for k, v in outputs.items()),
        )
        lines = "".join(
            f"- [{_md(str(v['name']))} version {_md(str(v['version']))}]"
            f"({_md_url(str(v['url']))})\n"
            for v in versions
        )
        _append_step_summary(environ, f"### Registered models\n\n{lines}\n")


def _append_file(path: str | None, text: str) -> None:
    if not path:
        return
    try:
        with Path(path).open("a", encoding="utf-8") as stream:
            stream.write(text)
    except OSError as exc:
        log.warning("cannot append to %s: %s", path, exc)


def publish_error(
    message: str, *, out: TextIO, environ: Mapping[str, str], title: str = "orchestrator"
) -> None:
    """Report a build that could not produce results (a usage or infrastructure error)."""
    publish_errors([message], out=out, environ=environ, title=title)


def publish_errors(
    messages: Sequence[str],
    *,
    out: TextIO,
    environ: Mapping[str, str],
    title: str = "orchestrator",
) -> None:
    """:func:`publish_error` for several problems: one annotation each, then one failed task
    (Azure DevOps) or one step-summary section listing them all (GitHub). Callers mask the
    messages first: the step summary is a file, not a masked stream."""
    fmt = detect_format(environ)
    for message in messages:
        _annotate(out, fmt, "error", title, message)
    if fmt == "plain" or not messages:
        return
    if fmt == "azure-devops":
        out.write(f"##vso[task.complete result=Failed;]{escape_ado_data(_printable(title))}\n")
    else:
        body = "\n".join(html.escape(message) for message in messages)
        _append_step_summary(environ, f"## {_md(title)}: ERROR\n\n<pre>{body}</pre>\n")


def publish_warning(
    message: str, *, out: TextIO, environ: Mapping[str, str], title: str = "orchestrator"
) -> None:
    """One warning line, as a CI annotation where the CI has them (the build goes on)."""
    _annotate(out, detect_format(environ), "warning", title, message)


def _group_start(out: TextIO, fmt: Format, name: str) -> None:
    name = _safe(_one_line(name), fmt)
    if fmt == "azure-devops":
        out.write(f"##[group]{name}\n")
    elif fmt == "github-actions":
        out.write(f"::group::{escape_github_data(name)}\n")
    else:
        out.write(f"{name}\n")


def _group_end(out: TextIO, fmt: Format) -> None:
    if fmt == "azure-devops":
        out.write("##[endgroup]\n")
    elif fmt == "github-actions":
        out.write("::endgroup::\n")
    else:
        out.write("\n")


def _annotate(
    out: TextIO, fmt: Format, level: Literal["error", "warning"], title: str, message: str
) -> None:
    text = _printable(message)[:_ANNOTATION_CHARS]
    if fmt == "azure-devops":
        body = escape_ado_data(_safe(f"{_one_line(title)}: {text}", fmt))
        out.write(f"##vso[task.logissue type={level};]{body}\n")
    elif fmt == "github-actions":
        prop = escape_github_property(_defang(_printable(_one_line(title))))
        out.write(f"::{level} title={prop}::{escape_github_data(_defang(text))}\n")
    else:
        out.write(f"{level}: {_one_line(title)}: {text}\n")


def _append_step_summary(environ: Mapping[str, str], markdown: str) -> None:
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with Path(path).open("a", encoding="utf-8") as stream:
            stream.write(markdown)
    except OSError as exc:
        log.warning("cannot append to GITHUB_STEP_SUMMARY %s: %s", path, exc)
