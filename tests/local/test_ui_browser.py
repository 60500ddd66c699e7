"""The local Jobs UI in a real browser (headless Debian chromium through Playwright).

One real ``orchestrator build`` of the sample project, with a failing pytest test and a notebook
output holding a ``<script>``, runs on a local workspace while the browser watches its run page
update itself to the final state; then the tests click from ``/`` down to the failing cell.
Outside CI a missing browser skips these tests; in CI (``CI=true``) it fails them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from orchestrator.local.ui.test_counts import read_counts
from tests.local import screenshots as kit
from tests.tools import require

pytestmark = pytest.mark.slow  # a browser and real kernels (tests/tiers.py)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

BUILD_ID = "3141"
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require(kit.browser_missing())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = kit.launch(playwright)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Build:
    ws: LocalWorkspace
    project: Path
    thread: threading.Thread
    exit_code: list[int] = field(default_factory=list)

    def finish(self) -> int:
        """Wait for the build; it has given the workspace the counts of the JUnit it wrote
        (its own call, nothing posted here)."""
        self.thread.join(300)
        assert not self.thread.is_alive() and self.exit_code == [1]
        run_id = kit.latest_run_id(self.ws)
        counts = read_counts(self.ws.store, run_id)
        assert counts is not None, "the build did not record its test counts"
        expected = kit.junit_counts(self.project, BUILD_ID)
        assert (counts.tests, counts.failures, counts.errors, counts.skipped) == (
            expected["tests"],
            expected["failures"],
            expected["errors"],
            expected["skipped"],
        )
        return run_id


@pytest.fixture(scope="module")
def build(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """A pull-request build with a failing task, started in the background."""
    root = tmp_path_factory.mktemp("ui")
    ws = start_local_workspace(root / "state", token="ui-token", cluster_start_delay=0.2)
    project = kit.make_project(root)
    kit.break_a_test(project)
    kit.add_html_output(project)
    result: list[int] = []

    def run() -> None:
        result.append(
            kit.run_build(ws, project, BUILD_ID, branch="feature/x", pr="42", commit="c0ffee1")
        )

    thread = threading.Thread(target=run, name="ui-build", daemon=True)
    thread.start()
    try:
        yield Build(ws, project, thread, result)
    finally:
        thread.join(300)
        ws.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    new = context.new_page()
    new.set_default_timeout(30_000)
    try:
        yield new
    finally:
        context.close()


def active_run(ws: LocalWorkspace, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = ws.store.list_runs(job_id=None, active_only=True)
        if runs:
            return int(runs[0]["run_id"])
        time.sleep(0.05)
    raise AssertionError("the build started no run")


def test_a_running_builds_page_updates_to_its_final_state_by_itself(
    build: Build, page: Page
) -> None:
    from playwright.sync_api import expect

    run_id = active_run(build.ws)
    page.goto(f"{build.ws.url}/jobs/1/runs/{run_id}")  # the URL the build prints
    expect(page.locator("dd.live")).to_be_visible()
    state = page.locator("#run-state [data-state]")
    expect(state).to_have_attribute("data-state", "FAILED", timeout=TIMEOUT_MS)
    expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
    expect(page.locator("dd.live")).to_have_count(0)
    build.finish()


def test_click_from_the_index_to_the_failing_cell(build: Build, page: Page) -> None:
    from playwright.sync_api import expect

    run_id = build.finish()
    page.goto(build.ws.url + "/")
    page.locator("header").get_by_role("link", name="Jobs").click()
    expect(page).to_have_url(f"{build.ws.url}/jobs")
    # a repo's builds side by side: the jobs tagged with its name, one job per build
    page.locator("tr[data-job-id='1']").get_by_role("link", name="repo: sample").click()
    expect(page).to_have_url(f"{build.ws.url}/jobs?tag=repo%3Asample")
    job_row = page.locator("tr[data-job-id='1']")
    expect(job_row.locator("[data-state]")).to_have_attribute("data-state", "FAILED")
    expect(job_row).to_contain_text("feature/x")
    expect(job_row).to_contain_text("23/24 passed, 1 failed")
    job_row.get_by_role("link", name=f"build-sample {BUILD_ID}").click()

    row = page.locator(f"tr[data-run-id='{run_id}']")
    expect(row).to_contain_text("feature/x")
    expect(row).to_contain_text("#42")
    expect(row).to_contain_text(BUILD_ID)
    expect(row).to_contain_text("23/24 passed, 1 failed")
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "FAILED")
    row.get_by_role("link", name=str(run_id), exact=True).click()

    expect(page.locator("h1")).to_have_text(f"Run {run_id} of build-sample {BUILD_ID}")
    expect(page.locator("#test-counts")).to_have_text("23/24 passed, 1 failed")
    tasks = page.locator("table.tasks")
    expect(tasks.locator("tr[data-task='run_testthat'] [data-state]")).to_have_attribute(
        "data-state", "SUCCESS"
    )
    failing = tasks.locator("tr[data-task='run_pytest']")
    expect(failing.locator("[data-state]")).to_have_attribute("data-state", "FAILED")
    # the task ran the build's notebook itself: its error is the notebook's own
    expect(failing).to_contain_text("AssertionError: pytest failed")
    expect(failing).not_to_contain_text("WorkflowException")
    expect(page.locator("svg.timeline rect.FAILED")).to_have_count(1)
    # the failing test the build reported, linked to the cell its task failed in
    test = page.locator("#failing-tests tr", has_text="test_broken")
    expect(test).to_contain_text("run_pytest")
    expect(test).to_contain_text("arithmetic is broken")
    test.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+#cell-\d+$"))
    cell = int(page.url.rsplit("-", 1)[1])
    expect(page.locator(f"#cell-{cell}")).to_have_attribute("data-failed", "true")

    expect(page.locator("#task-state [data-state]")).to_have_attribute("data-state", "FAILED")
    expect(page.locator("#failed-cells")).to_contain_text(f"tests/run_pytest cell {cell}")
    error = page.locator(".cell[data-failed] pre[data-error]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("AssertionError: pytest failed (exit code 1): 1 failed")
    expect(page.locator("main")).to_contain_text("arithmetic is broken")


def test_a_script_in_a_notebook_output_does_not_run(build: Build, page: Page) -> None:
    from playwright.sync_api import expect

    run_id = build.finish()
    doc = build.ws.store.get_run(run_id)
    assert doc is not None
    task = next(t for t in doc["tasks"] if t["task_key"] == "run_pytest")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    page.goto(f"{build.ws.url}/jobs/1/runs/{task['run_id']}")
    title = page.title()
    frame = page.locator("iframe.html-out")
    expect(frame).to_have_count(1)
    assert frame.get_attribute("sandbox") == ""
    expect(page.frame_locator("iframe.html-out").locator("#html-output")).to_have_text(
        "rendered HTML output"
    )
    page.wait_for_timeout(500)
    assert page.title() == title and "script ran" not in title
    assert dialogs == []
