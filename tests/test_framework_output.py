"""Test tallies read from what a framework printed, for runs that wrote no JUnit."""

from __future__ import annotations

from orchestrator.results.framework_output import read_framework_run

PYTEST_TAIL = """\
=========================== short test summary info ============================
FAILED tests/test_math.py::test_pivot - AssertionError: not sorted as expected
"""


def test_a_pytest_summary_that_names_warnings_is_still_counted() -> None:
    """A plugin's deprecation warning adds ``, 1 warning`` to pytest's last line."""
    run = read_framework_run(PYTEST_TAIL + "1 failed, 1 passed, 2 warnings, 1 deselected in 0.07s")
    assert run is not None
    assert (run.framework, run.passed, run.failed, run.skipped) == ("pytest", 1, 1, 0)
    assert run.failing == ("tests/test_math.py::test_pivot",)
