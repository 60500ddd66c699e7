"""The template's job settings as the settings of one build's own job: the conversions of
:mod:`orchestrator.job.build_job`."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.job.build_job import build_job

FOLDER = "/Users/ci@example.com/orchestrator-builds/repo/b-1"
ENTRY = "/Users/ci@example.com/orchestrator-builds/repo/_orchestrator/entry"


def settings(*tasks: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": "build-repo", "tasks": list(tasks), **more}


def notebook(key: str, path: str, **params: str) -> dict[str, Any]:
    task: dict[str, Any] = {"task_key": key, "notebook_task": {"notebook_path": path}}
    if params:
        task["notebook_task"]["base_parameters"] = params
    return task


def submit(value: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return build_job(
        value,
        name="build-repo b-1",
        tags={"repo": "repo", "build": "b-1"},
        build_folder=FOLDER,
        parameters=kwargs.pop("parameters", {"build_id": "b-1", "results_dir": "/r"}),
        **kwargs,
    )


def test_the_job_is_the_builds_and_never_starts_on_its_own() -> None:
    body = submit(
        settings(
            notebook("a", "tests/a"),
            tags={"repo": "other", "team": "data"},
            max_concurrent_runs=4,
            schedule={"quartz_cron_expression": "0 0 * * * ?", "timezone_id": "UTC"},
            trigger={"periodic": {"interval": 1, "unit": "HOURS"}},
            continuous={"pause_status": "UNPAUSED"},
            timeout_seconds=600,
            queue={"enabled": True},
            parameters=[{"name": "x", "default": "1"}],
        )
    )
    assert set(body) == {"name", "tags", "tasks", "timeout_seconds", "queue", "max_concurrent_runs"}
    assert body["name"] == "build-repo b-1"
    assert body["tags"] == {"repo": "repo", "team": "data", "build": "b-1"}


def test_relative_notebooks_are_the_builds_and_absolute_ones_stay() -> None:
    body = submit(settings(notebook("a", "tests/a"), notebook("b", "/Shared/lib/b")))
    paths = [t["notebook_task"]["notebook_path"] for t in body["tasks"]]
    assert paths == [f"{FOLDER}/tests/a", "/Shared/lib/b"]


def test_build_parameters_reach_every_task_below_its_own_and_fill_references() -> None:
    task = notebook("a", "a", results_dir="{{job.parameters.results_dir}}/{{task.name}}", own="1")
    body = submit(settings(task, parameters=[{"name": "x", "default": "d"}]))
    params = body["tasks"][0]["notebook_task"]["base_parameters"]
    assert params == {"x": "d", "build_id": "b-1", "results_dir": "/r/{{task.name}}", "own": "1"}


def test_a_task_of_the_entry_notebook_runs_its_notebook_directly() -> None:
    legacy = notebook(
        "a",
        ENTRY,
        notebook="tests/run_pytest",
        notebook_timeout_seconds="900",
        **{"arg.data_dir": "{{job.parameters.build_id}}/data"},
    )
    (task,) = submit(settings(legacy), entry_notebook=ENTRY)["tasks"]
    assert task["notebook_task"]["notebook_path"] == f"{FOLDER}/tests/run_pytest"
    assert task["notebook_task"]["base_parameters"] == {
        "build_id": "b-1",
        "results_dir": "/r",
        "data_dir": "b-1/data",
    }
    assert task["timeout_seconds"] == 900
    without = notebook("b", ENTRY)
    with pytest.raises(UsageError, match=r"task b: .*names no notebook"):
        submit(settings(without), entry_notebook=ENTRY)


def test_job_clusters_stay_the_jobs() -> None:
    cluster = {"spark_version": "15.4.x-scala2.12", "num_workers": 1}
    task = notebook("a", "a") | {"job_cluster_key": "main"}
    clusters = [{"job_cluster_key": "main", "new_cluster": cluster}]
    body = submit(settings(task, job_clusters=clusters))
    assert body["job_clusters"] == clusters
    assert body["tasks"][0]["job_cluster_key"] == "main"


def test_selected_tasks_keep_only_dependencies_among_them() -> None:
    a, b = notebook("a", "a"), notebook("b", "b") | {"depends_on": [{"task_key": "a"}]}
    c = notebook("c", "c") | {"depends_on": [{"task_key": "a"}, {"task_key": "b"}]}
    body = submit(settings(a, b, c), tasks=["b", "c"])
    assert [t["task_key"] for t in body["tasks"]] == ["b", "c"]
    assert "depends_on" not in body["tasks"][0]
    assert body["tasks"][1]["depends_on"] == [{"task_key": "b"}]


def test_a_relative_path_that_leaves_the_build_is_refused() -> None:
    with pytest.raises(UsageError, match="leaves the build"):
        submit(settings(notebook("a", "../other/x")))


def test_many_independent_tasks_on_one_cluster_run_in_lanes() -> None:
    """A cluster runs at most 150 execution contexts: more than LANES independent tasks on one
    cluster are chained LANES apart, each running whatever the one before it did."""
    from orchestrator.job.build_job import LANES

    many = [notebook(f"t{i}", f"n{i}") | {"existing_cluster_id": "c1"} for i in range(LANES + 50)]
    other = [notebook("x", "x") | {"existing_cluster_id": "c2"}]
    tasks = submit(settings(*many, *other))["tasks"]
    assert all("depends_on" not in t for t in tasks[:LANES])
    assert tasks[LANES]["depends_on"] == [{"task_key": "t0"}]
    assert tasks[LANES + 49]["depends_on"] == [{"task_key": "t49"}]
    assert {t.get("run_if") for t in tasks[LANES : LANES + 50]} == {"ALL_DONE"}
    assert "depends_on" not in tasks[-1]  # another cluster's task
    # a job with dependencies of its own is left as its template says
    chained = [*many[:-1], many[-1] | {"depends_on": [{"task_key": "t0"}]}]
    tasks = submit(settings(*chained))["tasks"]
    assert [t.get("depends_on") for t in tasks if t.get("depends_on")] == [[{"task_key": "t0"}]]


def test_a_job_over_the_task_limit_is_refused_before_anything_is_made() -> None:
    from orchestrator.job.template import MAX_TASKS, validate_job_settings

    tasks = [notebook(f"t{i}", f"n{i}") for i in range(MAX_TASKS + 1)]
    with pytest.raises(UsageError, match=r"tasks: a job has at most 1000 tasks .* has 1001"):
        validate_job_settings(settings(*tasks), source="job-template.json")
