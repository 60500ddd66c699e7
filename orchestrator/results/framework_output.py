"""What a test framework that wrote no JUnit printed: its counts and its failing tests.

A runner notebook that calls testthat, pytest or unittest without a JUnit reporter still
prints a tally; each is read from the notebook's output (its ``runs/export`` page, so this works
on a real workspace as on the local one), the last tally a framework printed:

* testthat: ``[ FAIL 1 | WARN 0 | SKIP 2 | PASS 81 ]`` (it counts expectations) and the test
  named in each ``── Failure (file:line): name ──`` (or ``Error``) header;
* pytest: ``1 failed, 12 passed, 1 skipped in 0.52s`` (with or without its ``=`` rule) and the
  ``FAILED path::test`` lines of its short summary;
* unittest: ``Ran 14 tests``, then ``FAILED (failures=1, errors=1, skipped=2)`` or ``OK`` and
  the ``FAIL: test (module.Class)``/``ERROR:`` headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FrameworkRun", "read_framework_run"]

_TESTTHAT = re.compile(r"\[ FAIL (\d+) \| WARN \d+ \| SKIP (\d+) \| PASS (\d+) \]")
_TESTTHAT_FAILED = re.compile(r"^\W*(?:Failure|Error) \([^)]*\): (.+?)\W*$")
#: pytest's final line; its warnings and deselected tests are named there too, never counted
_PYTEST = re.compile(
    r"^=*\s*((?:\d+ (?:failed|passed|skipped|errors?|xfailed|xpassed|warnings?|deselected)"
    r"(?:, )?)+) in "
)
_PYTEST_COUNT = re.compile(r"(\d+) (failed|passed|skipped|errors?|xfailed|xpassed)")
_PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)(?: - .*)?$")
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in ")
_UNITTEST_END = re.compile(r"^(OK|FAILED)(?: \(([^)]*)\))?$")
_UNITTEST_FAILED = re.compile(r"^(?:FAIL|ERROR): (\S+ \([^)]*\))$")


@dataclass(frozen=True)
class FrameworkRun:
    """The counts a framework printed (tests, or expectations for testthat)."""

    framework: str  # testthat, pytest, unittest
    passed: int
    failed: int
    skipped: int
    failing: tuple[str, ...]  # the names it printed, in order, once each

    @property
    def counts_tests(self) -> bool:
        return self.framework != "testthat"


def _names(lines: list[str], pattern: re.Pattern[str]) -> tuple[str, ...]:
    found: list[str] = []
    for line in lines:
        match = pattern.match(line.strip())
        if match and match.group(1) not in found:
            found.append(match.group(1))
    return tuple(found)


def read_framework_run(output: str) -> FrameworkRun | None:
    """The last tally a framework printed in ``output``, or None."""
    lines = output.splitlines()
    for line in reversed(lines):
        text = line.strip()
        if match := _TESTTHAT.search(text):
            failed, skipped, passed = (int(g) for g in match.groups())
            return FrameworkRun(
                "testthat", passed, failed, skipped, _names(lines, _TESTTHAT_FAILED)
            )
        if match := _PYTEST.match(text):
            counts = {kind.rstrip("s"): 0 for kind in ("failed", "passed", "skipped", "error")}
            for number, kind in _PYTEST_COUNT.findall(match.group(1)):
                kind = {"errors": "error", "xfailed": "skipped", "xpassed": "passed"}.get(
                    kind, kind
                )
                counts[kind] = counts.get(kind, 0) + int(number)
            failed = counts["failed"] + counts["error"]
            return FrameworkRun(
                "pytest", counts["passed"], failed, counts["skipped"], _names(lines, _PYTEST_FAILED)
            )
        if match := _UNITTEST_END.match(text):
            ran = next((int(m.group(1)) for x in lines if (m := _UNITTEST_RAN.match(x))), None)
            if ran is None:
                continue
            details = dict(
                part.strip().split("=", 1)
                for part in (match.group(2) or "").split(",")
                if "=" in part
            )
            failed = int(details.get("failures", 0)) + int(details.get("errors", 0))
            skipped = int(details.get("skipped", 0))
            return FrameworkRun(
                "unittest",
                max(0, ran - failed - skipped),
                failed,
                skipped,
                _names(lines, _UNITTEST_FAILED),
            )
    return None
