"""Following a failure through the runs a notebook started, on raw JSON shaped as the Jobs API
reference shows it: the export page's notebook model, ``runs/get`` of the child, its
``runs/get-output``. A fake workspace answers them (no live service is needed to read JSON);
the emulator's own pages are built with the local workspace's encoder, so both sides agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.adapters.databricks import RunView, TaskOutput, parse_run
from orchestrator.build.failures import trace_failure
from orchestrator.local.kernel.notebook_util import CHILD_FAILED
from orchestrator.local.state.notebook_model import with_model
from orchestrator.results.run_export import read_notebook

FOLDER = "/Users/ci@example.com/orchestrator-builds/team/f1"


def command(position: int, source: str, **more: Any) -> dict[str, Any]:
    return {
        "version": "CommandV1",
        "position": float(position),
        "command": source,
        "state": "finished",
        "results": None,
        "errorSummary": None,
        "error": None,
        **more,
    }


def page(name: str, *commands: dict[str, Any]) -> str:
    model = {"version": "NotebookV1", "name": name, "language": "python", "commands": commands}
    return with_model("<html><head></head><body></body></html>", model)


def link(run_id: int) -> dict[str, Any]:
    html = f'<a href="http://ws/runs/{run_id}">Notebook job #{run_id}</a>'
    return {"type": "listResults", "data": [{"type": "html", "data": html}]}


class FakeWorkspace:
    """``runs/get``, ``runs/export`` and ``runs/get-output`` answers, by run id."""

    def __init__(self) -> None:
        self.runs: dict[int, RunView] = {}
        self.pages: dict[int, list[str]] = {}
        self.outputs: dict[int, TaskOutput] = {}

    def get_run(self, run_id: int) -> RunView:
        return self.runs[run_id]

    def export_views(self, run_id: int) -> list[str]:
        return self.pages.get(run_id, [])

    def task_output(self, run_id: int) -> TaskOutput:
        return self.outputs.get(run_id, TaskOutput())


def child_run(run_id: int, notebook: str, **state: Any) -> RunView:
    task = {"task_key": "child", "run_id": run_id, "notebook_task": {"notebook_path": notebook}}
    return parse_run(
        {
            "run_id": run_id,
            "run_name": "child",
            "run_type": "WORKFLOW_RUN",
            "run_page_url": f"http://ws/runs/{run_id}",
            "tasks": [{**task, **state}],
            **state,
        }
    )


def runner_page(child: int) -> str:
    return page(
        "run_checks",
        command(1, "%md\n# Runner"),
        command(2, "print('start')"),
        command(
            3,
            'dbutils.notebook.run("./checks", 60)',
            state="error",
            results=link(child),
            errorSummary=f"WorkflowException: {CHILD_FAILED}",
            error=f"WorkflowException: {CHILD_FAILED}",
        ),
    )


def test_the_failure_is_traced_to_the_innermost_notebook_and_its_cell() -> None:
    ws = FakeWorkspace()
    ws.runs[9] = child_run(
        9,
        f"{FOLDER}/notebooks/checks",
        state={"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
    )
    ws.pages[9] = [
        page(
            "checks",
            command(
                1,
                "ids = [1, 1]\nprint('checking')",
                results={"type": "listResults", "data": [{"type": "ansi", "data": "checking\n"}]},
            ),
            command(
                2,
                "assert len(set(ids)) == 2, 'duplicates'",
                state="error",
                errorSummary="AssertionError: duplicates",
                error=(
                    "Cell In[2], line 1\n----> 1 assert len(set(ids)) == 2\n"
                    "AssertionError: duplicates"
                ),
            ),
        )
    ]
    traced = trace_failure(
        ws,  # type: ignore[arg-type]
        notebook_path=f"{FOLDER}/notebooks/run_checks",
        run_url="http://ws/jobs/1/runs/2",
        views=[runner_page(9)],
        output=TaskOutput(error=f"WorkflowException: {CHILD_FAILED}"),
        build_folder=FOLDER,
    )
    assert traced.failure is not None and traced.platform is None
    point = traced.failure
    assert point.where() == "notebooks/checks, cell 2"
    assert point.through == ("notebooks/run_checks",)
    assert point.error == "AssertionError: duplicates"
    assert point.run_url == "http://ws/runs/9"
    assert "cell 2, line 1" in point.trace
    assert traced.output == "checking"


def test_a_child_the_platform_ended_makes_the_failure_the_platforms() -> None:
    """Databricks documents that a notebook run fails whatever its timeout when Databricks is
    down for more than 10 minutes: the caller only sees WorkflowException, the child's run says
    what happened."""
    ws = FakeWorkspace()
    ws.runs[9] = child_run(
        9,
        f"{FOLDER}/notebooks/checks",
        state={"life_cycle_state": "INTERNAL_ERROR", "state_message": "the workspace stopped"},
    )
    traced = trace_failure(
        ws,  # type: ignore[arg-type]
        notebook_path=f"{FOLDER}/notebooks/run_checks",
        run_url=None,
        views=[runner_page(9)],
        output=TaskOutput(),
        build_folder=FOLDER,
    )
    assert traced.platform == "task child: INTERNAL_ERROR: the workspace stopped"


def test_a_succeeded_child_is_not_followed_and_the_callers_cell_is_reported() -> None:
    ws = FakeWorkspace()
    ws.runs[9] = child_run(
        9, f"{FOLDER}/x", state={"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}
    )
    traced = trace_failure(
        ws,  # type: ignore[arg-type]
        notebook_path=f"{FOLDER}/notebooks/run_checks",
        run_url=None,
        views=[runner_page(9)],
        output=TaskOutput(),
        build_folder=FOLDER,
    )
    assert traced.failure is not None
    assert traced.failure.where() == "notebooks/run_checks, cell 3"
    assert traced.failure.through == ()


def test_the_model_is_read_back_as_the_local_workspace_encodes_it() -> None:
    notebook = read_notebook(runner_page(9))
    assert notebook is not None
    assert [c.number for c in notebook.cells] == [1, 2, 3]
    failing = notebook.failing_cell
    assert failing is not None and failing.number == 3
    assert [c.run_id for c in failing.children] == [9]


def test_a_python_failure_inside_a_run_helper_is_found_in_the_helpers_cells(
    tmp_path: Path,
) -> None:
    from orchestrator.adapters.databricks import DeployItem
    from orchestrator.build.run_magic import notebook_cells, through_run_magic
    from orchestrator.results.outcomes import FailurePoint

    helper = tmp_path / "helpers.py"
    helper.write_text(
        "# Databricks notebook source\nimport json\n\n# COMMAND ----------\n\n"
        "# MAGIC %md\n# MAGIC Checks\n\n# COMMAND ----------\n\n"
        "def check(rows):\n    assert rows, 'no rows at all'\n\ncheck([])\n"
    )
    assert notebook_cells(helper.read_text())[1] == "%md\nChecks"
    item = DeployItem(helper, f"{FOLDER}/lib/helpers", "NOTEBOOK", "PYTHON", 1)
    point = FailurePoint(
        notebook="notebooks/run_checks",
        cell=2,
        cell_source="%run ../lib/helpers",
        error="AssertionError: no rows at all",
        trace="Cell In[2], line 4\n----> 4 check([])\nAssertionError: no rows at all",
    )
    moved = through_run_magic(point, [item], build_folder=FOLDER)
    assert moved.where() == "lib/helpers, cell 3"
    assert moved.through == ("notebooks/run_checks, cell 2",)
    assert moved.cell_source.splitlines()[0] == "def check(rows):"
    # a helper the build did not deploy: the %run cell stays the failing cell
    assert through_run_magic(point, [], build_folder=FOLDER) == point
