"""The README's screenshots of the local Jobs UI, and the browser and builds its tests share.

Regenerate the pictures (a minute: two real builds on a temporary local workspace)::

    .venv/bin/python -m tests.local.screenshots            # writes docs/images/ui-*.png

The browser is Debian's ``chromium`` (``/usr/bin/chromium``, or ``$ORCH_CHROMIUM``) driven by
Playwright for Python; Playwright's own browser download is never used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from tests.buildkit import build, make_project, remote_args

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

REPO = Path(__file__).resolve().parents[2]
TOKEN = "screenshots-token-not-a-secret"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# An HTML output whose script would rewrite it: the page must show it as written.
HTML_OUTPUT = (
    '<p id="html-output">rendered HTML output</p>'
    "<script>document.getElementById('html-output').textContent = 'script ran';"
    "window.top.document.title = 'script ran';</script>"
)
_CI_NAMES = ("TF_BUILD", "GITHUB_ACTIONS")


def chromium_executable() -> str | None:
    candidate = os.environ.get("ORCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return candidate if Path(candidate).is_file() else None


def browser_missing() -> str | None:
    """Why no browser test can run here, or None when Playwright and chromium are there."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    if chromium_executable() is None:
        return "chromium is not installed (apt-get install chromium)"
    return None


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=chromium_executable(), args=list(CHROMIUM_ARGS), headless=True
    )


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` set in ``os.environ`` (other CI markers removed), restored afterwards."""
    saved = {name: os.environ.get(name) for name in (*values, *_CI_NAMES)}
    for name in _CI_NAMES:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pull_request_build(build_id: str, *, branch: str, pr: str, commit: str) -> dict[str, str]:
    """The variables of an Azure DevOps build of ``branch`` (a pull-request build if ``pr``)."""
    env = {
        "TF_BUILD": "True",
        "BUILD_BUILDID": build_id,
        "BUILD_BUILDNUMBER": build_id,
        "BUILD_REPOSITORY_NAME": "sample",
        "BUILD_SOURCEBRANCH": f"refs/heads/{branch}",
        "BUILD_SOURCEVERSION": commit,
    }
    if pr:
        env["BUILD_SOURCEBRANCH"] = f"refs/pull/{pr}/merge"
        env["SYSTEM_PULLREQUEST_PULLREQUESTNUMBER"] = pr
        env["SYSTEM_PULLREQUEST_SOURCEBRANCH"] = f"refs/heads/{branch}"
    return env


def break_a_test(project: Path) -> None:
    """The pytest task fails: one test of the sample is wrong."""
    test_file = project / "databricks" / "tests" / "pytest" / "test_features.py"
    test_file.write_text(
        test_file.read_text()
        + "\n\ndef test_broken():\n    assert 1 + 1 == 3, 'arithmetic is broken'\n"
    )


def add_html_output(project: Path) -> None:
    """The pytest runner notebook shows :data:`HTML_OUTPUT` in a cell of its own."""
    notebook = project / "databricks" / "tests" / "run_pytest.py"
    separator = "# COMMAND ----------\n"
    head, tail = notebook.read_text().split(separator, 1)
    cell = f"displayHTML({HTML_OUTPUT!r})\n\n"
    notebook.write_text(head + separator + "\n" + cell + separator + tail)


def junit_counts(project: Path, build_id: str) -> dict[str, int]:
    """Totals of the merged JUnit the build wrote (what it reports to the workspace)."""
    root = ET.parse(project / "test-results" / f"TEST-sample-{build_id}.xml").getroot()
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in root.iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, "0") or 0)
    return totals


def latest_run_id(ws: LocalWorkspace) -> int:
    """The newest build run (its dbutils.notebook.run children are runs too, newer ones)."""
    runs = ws.store.list_runs(job_id=None, active_only=False)
    return int(next(r for r in runs if r.get("run_type") != "WORKFLOW_RUN")["run_id"])


def run_build(
    ws: LocalWorkspace, project: Path, build_id: str, *, branch: str, pr: str, commit: str
) -> int:
    """One ``orchestrator build`` of ``project`` on ``ws`` as a pull-request build."""
    env = {**pull_request_build(build_id, branch=branch, pr=pr, commit=commit)}
    env["ORCH_TEST_TOKEN"] = ws.token
    with environment(env):
        return build(project, "--build-id", build_id, *remote_args(ws))


def take(ws: LocalWorkspace, out: Path) -> list[Path]:
    """Screenshots of a repo's builds side by side (the jobs tagged with its name) and of the
    failing run's page."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 720}, device_scale_factor=1)
        page.goto(f"{ws.url}/jobs?tag=repo:sample")
        shots.append(out / "ui-builds.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        page.locator('tr:has(span[data-state="FAILED"]) a').first.click()
        page.locator('tr:has(span[data-state="FAILED"]) a').first.click()
        shots.append(out / "ui-run.png")
        page.screenshot(path=str(shots[-1]), full_page=True)
        browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.local.screenshots")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        print(f"cannot take screenshots: {missing}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ui-screenshots-") as tmp:
        root = Path(tmp)
        ws = start_local_workspace(root / "state", token=TOKEN, cluster_start_delay=0.2)
        try:
            builds = (
                ("1041", "main", "", "9f1c2ab0d4e5f60718293a4b5c6d7e8f90a1b2c3"),
                ("1042", "feature/churn-bins", "42", "5e8d7c1f2a3b4c5d6e7f8091a2b3c4d5e6f70819"),
            )
            for build_id, branch, pr, commit in builds:
                project = make_project(root / build_id)
                if pr:
                    break_a_test(project)
                run_build(ws, project, build_id, branch=branch, pr=pr, commit=commit)
            for shot in take(ws, args.out):
                print(shot.relative_to(REPO) if shot.is_relative_to(REPO) else shot)
        finally:
            ws.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
