"""Rendering job-template.json: placeholders, positions, and job-settings checks."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from orchestrator.build.parameters import build_parameters, declare_parameters, job_values
from orchestrator.config.context import BuildContext
from orchestrator.config.loader import load_config
from orchestrator.errors import UsageError
from orchestrator.job.build_job import build_job
from orchestrator.job.template import (
    JsonValue,
    render_job,
    render_template,
    validate_job_settings,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRY = "/Shared/builds/notebooks-ci/_entry/run"


def render(text: str, **values: JsonValue) -> dict[str, Any]:
    return render_template(text, values=values, source="job-template.json")


def render_error(text: str, **values: JsonValue) -> str:
    with pytest.raises(UsageError) as raised:
        render(text, **values)
    return str(raised.value)


def minimal_job() -> dict[str, Any]:
    return {
        "name": "build-repo",
        "tasks": [
            {
                "task_key": "a",
                "existing_cluster_id": "c",
                "notebook_task": {"notebook_path": "/Shared/entry"},
            }
        ],
    }


def invalid(settings: dict[str, Any]) -> list[str]:
    with pytest.raises(UsageError) as raised:
        validate_job_settings(settings, source="job-template.json")
    prefix = "job-template.json: invalid job settings: "
    lines = str(raised.value).splitlines()
    assert all(line.startswith(prefix) for line in lines)
    return [line.removeprefix(prefix) for line in lines]


# -- the sample template ----------------------------------------------------------------------


def sample_values() -> dict[str, JsonValue]:
    config = load_config(REPO_ROOT / "orchestrator.yml", target="local", overrides={}, environ={})
    return job_values(
        config=config, repo_name="notebooks-ci", cluster_id="0000-local", entry_notebook=ENTRY
    )


def test_sample_template_renders_to_valid_job_settings() -> None:
    settings = render_job(REPO_ROOT / "job-template.json", values=sample_values())
    assert settings["name"] == "build-notebooks-ci"
    assert settings["queue"] == {"enabled": True}
    assert settings["timeout_seconds"] == 3600 + 600


def sample_run(build_folder: str = "/b/notebooks-ci/b-1") -> dict[str, Any]:
    config = load_config(REPO_ROOT / "orchestrator.yml", target="local", overrides={}, environ={})
    context = BuildContext("local", "b-1", "7", "notebooks-ci", "main", "abc", None, None)
    parameters = build_parameters(config=config, context=context) | {"build_folder": build_folder}
    settings = render_job(REPO_ROOT / "job-template.json", values=sample_values())
    settings = declare_parameters(settings, parameters, source="job-template.json")
    return build_job(
        settings,
        name="build-notebooks-ci b-1",
        tags={"repo": "notebooks-ci", "build": "b-1"},
        build_folder=build_folder,
        parameters=parameters,
    )


def test_sample_template_runs_its_test_notebooks_in_parallel_in_the_builds_job() -> None:
    run = sample_run()
    assert run["name"] == "build-notebooks-ci b-1"
    assert "parameters" not in run  # pushed down, they would override the tasks' own
    tasks = {t["task_key"]: t for t in run["tasks"]}
    assert set(tasks) == {"run_pytest", "run_testthat", "run_spark_tests"}
    for key, task in tasks.items():
        assert "depends_on" not in task
        assert task["existing_cluster_id"] == "0000-local"
        assert task["timeout_seconds"] == 3600
        notebook = task["notebook_task"]
        assert notebook["notebook_path"] == f"/b/notebooks-ci/b-1/tests/{key}"
        parameters = notebook["base_parameters"]
        assert (
            parameters["build_id"] == "b-1" and parameters["build_folder"] == "/b/notebooks-ci/b-1"
        )
        assert parameters["results_dir"].endswith("/notebooks-ci/b-1/results/{{task.name}}")
        assert "{{job.parameters" not in json.dumps(task)
    pytest_params = tasks["run_pytest"]["notebook_task"]["base_parameters"]
    assert pytest_params["tests_dir"].endswith("/notebooks-ci/b-1/tests/pytest")
    testthat = tasks["run_testthat"]["notebook_task"]["base_parameters"]
    assert testthat["model_path"].endswith("/notebooks-ci/b-1/models/churn_model.rds")
    spark = tasks["run_spark_tests"]["notebook_task"]["base_parameters"]
    # a table of its own per run, so concurrent builds on one workspace never share it
    assert spark["table"] == "main.churn_test.customer_features_{{job.run_id}}"


def test_two_builds_runs_differ_only_in_what_is_per_build() -> None:
    first, second = sample_run("/b/notebooks-ci/b-1"), sample_run("/b/notebooks-ci/b-2")
    assert first != second
    text = json.dumps(first).replace("/b/notebooks-ci/b-1", "/b/notebooks-ci/b-2")
    assert json.loads(text) == second


def test_every_reference_in_the_sample_template_names_a_build_parameter() -> None:
    settings = render_job(REPO_ROOT / "job-template.json", values=sample_values())
    config = load_config(REPO_ROOT / "orchestrator.yml", target="local", overrides={}, environ={})
    context = BuildContext("local", "b-1", "7", "notebooks-ci", "main", "abc", None, None)
    defined = set(build_parameters(config=config, context=context))
    used = set(re.findall(r"\{\{job\.parameters\.([\w.-]+)\}\}", json.dumps(settings)))
    assert used and used <= defined


def test_sample_template_settings_survive_the_sdk_round_trip_unchanged() -> None:
    from databricks.sdk.service.jobs import JobSettings

    settings = render_job(REPO_ROOT / "job-template.json", values=sample_values())
    assert JobSettings.from_dict(settings).as_dict() == settings


def test_sample_template_does_not_depend_on_the_build() -> None:
    first = render_job(REPO_ROOT / "job-template.json", values=sample_values())
    second = render_job(REPO_ROOT / "job-template.json", values=sample_values())
    assert first == second  # what differs per build travels as parameters


def test_build_parameters_name_the_build_folder_and_storage_layout() -> None:
    config = load_config(REPO_ROOT / "orchestrator.yml", target="local", overrides={}, environ={})
    context = BuildContext("local", "b-1", "7", "notebooks-ci", "main", "abc", None, None)
    parameters = build_parameters(config=config, context=context)
    storage = f"{REPO_ROOT}/.orchestrator/storage/notebooks-ci/b-1"
    assert parameters["build_folder"] == "~/orchestrator-builds/notebooks-ci/b-1"
    assert parameters["storage_dir"] == storage
    assert parameters["data_dir"] == f"{storage}/data"
    assert parameters["results_dir"] == f"{storage}/results"
    assert parameters["pull_request"] == ""


def test_missing_template_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read the job template"):
        render_job(tmp_path / "job-template.json", values={})


# -- placeholders -----------------------------------------------------------------------------


def test_placeholders_are_replaced_inside_strings_and_keys() -> None:
    text = '{"name": "build-${repo}", "tags": {"${tag}": "x${repo}y"}}'
    assert render(text, repo="r1", tag="team") == {
        "name": "build-r1",
        "tags": {"team": "xr1y"},
    }


def test_a_whole_string_placeholder_takes_the_values_json_type() -> None:
    text = '{"a": "${n}", "b": "${flag}", "c": "${list}", "d": "n=${n}"}'
    assert render(text, n=16, flag=True, list=[1, "x"]) == {
        "a": 16,
        "b": True,
        "c": [1, "x"],
        "d": "n=16",
    }


def test_databricks_dynamic_references_pass_through() -> None:
    text = '{"p": "{{job.run_id}}/{{job.parameters.build_id}}/{{ task.name }}"}'
    assert render(text) == {"p": "{{job.run_id}}/{{job.parameters.build_id}}/{{ task.name }}"}


def test_double_dollar_escapes_a_placeholder() -> None:
    assert render('{"a": "$${HOME} costs $5"}') == {"a": "${HOME} costs $5"}


def test_values_with_quotes_and_backslashes_stay_valid_json() -> None:
    value = 'a "quoted" \\path\\ with\nnewline'
    assert render('{"a": "<${v}>"}', v=value) == {"a": f"<{value}>"}


def test_unknown_placeholder_reports_line_and_column() -> None:
    text = '{\n  "name": "x",\n  "tasks": "pre-${nope}"\n}'
    assert render_error(text, known=1) == (
        "job-template.json:3:17: unknown placeholder ${nope} (known: known)"
    )


def test_every_placeholder_problem_is_reported_at_once() -> None:
    text = '{"a": "${x}", "b": "${y", "c": "${not a name}"}'
    lines = render_error(text).splitlines()
    assert lines == [
        "job-template.json:1:8: unknown placeholder ${x} (known: none)",
        "job-template.json:1:21: unterminated placeholder (write '$${' for a literal '${')",
        "job-template.json:1:33: invalid placeholder '${not a name}'",
    ]


def test_a_structured_value_inside_text_is_refused() -> None:
    assert "is not text" in render_error('{"a": "x-${v}"}', v=[1])


def test_a_key_placeholder_must_be_text() -> None:
    assert "used as a key" in render_error('{"${k}": 1}', k=5)


def test_malformed_json_reports_line_and_column() -> None:
    message = render_error('{\n  "name": "x",\n  "tasks": [\n}')
    assert message.startswith("job-template.json:4:1: malformed JSON: ")
    assert "\n" not in message


def test_duplicate_keys_are_refused() -> None:
    assert "duplicate key 'name'" in render_error('{"name": "a", "name": "b"}')


def test_a_template_must_be_an_object() -> None:
    assert "a job template is a JSON object" in render_error("[1, 2]")


# -- properties of rendering ------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.text(), st.text(), st.text())
def test_any_text_value_lands_verbatim_between_any_text(pre: str, value: str, post: str) -> None:
    literal = json.dumps(pre.replace("$", "") + "${v}" + post.replace("$", ""))
    rendered = render(f'{{"a": {literal}}}', v=value)
    assert rendered == {"a": pre.replace("$", "") + value + post.replace("$", "")}


@given(json_values)
def test_a_template_without_placeholders_renders_to_itself(document: JsonValue) -> None:
    wrapped = {"doc": document}
    text = json.dumps(wrapped).replace("$", "")
    keys_unique = True

    def check(pairs: list[tuple[str, object]]) -> dict[str, object]:
        nonlocal keys_unique
        keys_unique &= len({k for k, _ in pairs}) == len(pairs)
        return dict(pairs)

    json.loads(text, object_pairs_hook=check)
    assume(keys_unique)  # removing "$" may make two keys equal, which templates refuse
    assert render(text) == json.loads(text)


@given(json_values)
def test_a_whole_string_placeholder_renders_any_json_value(value: JsonValue) -> None:
    assert render('{"a": "${v}"}', v=value) == {"a": value}


@given(st.text(alphabet=st.characters(blacklist_characters='$}"\\'), max_size=30))
def test_dynamic_references_and_escapes_pass_through_for_any_content(inner: str) -> None:
    text = json.dumps({"a": "{{" + inner + "}}", "b": "$${" + inner + "}"})
    assert render(text) == {"a": "{{" + inner + "}}", "b": "${" + inner + "}"}


@given(st.integers(min_value=0, max_value=5), st.integers(min_value=0, max_value=20))
def test_unknown_placeholders_are_located_exactly(lines_before: int, indent: int) -> None:
    text = "{" + "\n" * lines_before + " " * indent + '"a": "${zz}"}'
    message = render_error(text)
    line = lines_before + 1
    column = indent + (7 if lines_before else 8)
    assert message.startswith(f"job-template.json:{line}:{column}: unknown placeholder ${{zz}}")


# -- job settings checks ----------------------------------------------------------------------


def test_a_minimal_job_is_valid() -> None:
    validate_job_settings(minimal_job(), source="t.json")


def test_name_and_tasks_are_required() -> None:
    assert invalid({"tasks": []}) == [
        "name: a job needs a name",
        "tasks: a job needs at least one task",
    ]


def test_unknown_fields_are_refused_with_a_suggestion() -> None:
    job = minimal_job()
    job["tasks"][0]["notebok_task"] = job["tasks"][0].pop("notebook_task")
    assert "tasks[0].notebok_task: unknown field (did you mean 'notebook_task'?)" in invalid(job)


def test_types_and_enums_are_checked_against_the_sdk() -> None:
    job = minimal_job()
    job["queue"] = {"enabled": "yes"}
    job["format"] = "SINGLE"
    job["tags"] = {"repo": 5}
    job["tasks"][0]["notebook_task"]["source"] = "S3"
    problems = invalid(job)
    assert "queue.enabled: expected true or false" in problems
    assert "format: expected one of MULTI_TASK, SINGLE_TASK" in problems
    assert "tags.repo: expected a string" in problems
    assert "tasks[0].notebook_task.source: expected one of GIT, WORKSPACE" in problems


def test_required_sdk_fields_are_checked() -> None:
    job = minimal_job()
    del job["tasks"][0]["task_key"]
    job["tasks"][0]["notebook_task"] = {}
    problems = invalid(job)
    assert "tasks[0].task_key: required" in problems
    assert "tasks[0].notebook_task.notebook_path: required" in problems


def test_task_keys_must_be_unique() -> None:
    job = minimal_job()
    job["tasks"].append(copy.deepcopy(job["tasks"][0]))
    assert invalid(job) == ["tasks[1].task_key: 'a' is already used by tasks[0]"]


def test_dependencies_must_exist_and_not_point_at_themselves() -> None:
    job = minimal_job()
    job["tasks"][0]["depends_on"] = [{"task_key": "a"}, {"task_key": "ghost"}]
    assert invalid(job) == [
        "tasks[0].depends_on[0]: a task cannot depend on itself",
        "tasks[0].depends_on[1].task_key: no task 'ghost'",
    ]


def test_dependency_cycles_are_refused() -> None:
    job = minimal_job()
    base = job["tasks"][0]
    job["tasks"] = [
        {**base, "task_key": "a", "depends_on": [{"task_key": "c"}]},
        {**base, "task_key": "b", "depends_on": [{"task_key": "a"}]},
        {**base, "task_key": "c", "depends_on": [{"task_key": "b"}]},
        {**base, "task_key": "d", "depends_on": [{"task_key": "a"}]},
    ]
    (problem,) = invalid(job)
    assert problem.startswith("tasks: dependencies form a cycle: ")
    assert set(problem.split(": ")[-1].split(" -> ")) == {"a", "b", "c"}


def test_a_diamond_of_dependencies_is_fine() -> None:
    job = minimal_job()
    base = job["tasks"][0]
    job["tasks"] = [
        {**base, "task_key": "a"},
        {**base, "task_key": "b", "depends_on": [{"task_key": "a"}]},
        {**base, "task_key": "c", "depends_on": [{"task_key": "a"}]},
        {**base, "task_key": "d", "depends_on": [{"task_key": "b"}, {"task_key": "c"}]},
    ]
    validate_job_settings(job, source="t.json")


def test_workspace_notebook_paths_are_absolute_or_inside_the_build() -> None:
    job = minimal_job()
    for inside in ("tests/run_pytest", "./a", "a/../b"):
        job["tasks"][0]["notebook_task"]["notebook_path"] = inside
        validate_job_settings(job, source="job-template.json")
    job["tasks"][0]["notebook_task"]["notebook_path"] = "../other/run"
    assert invalid(job) == [
        "tasks[0].notebook_task.notebook_path: '../other/run' leaves the build folder; give a "
        "path relative to it (tests/run_pytest) or an absolute one"
    ]


@pytest.mark.parametrize("bad", [-1, "60", True, 1.5])
def test_timeouts_must_be_non_negative_integers(bad: object) -> None:
    job = minimal_job()
    job["timeout_seconds"] = bad
    job["tasks"][0]["timeout_seconds"] = bad
    problems = invalid(job)
    # one line per field: the type (a string, a bool, a float) or the sign
    fields = sorted(p.split(": ")[0] for p in problems)
    assert fields == ["tasks[0].timeout_seconds", "timeout_seconds"]
    sign = "must be a non-negative integer"
    assert all(p.endswith(("expected an integer", sign)) for p in problems), problems


@pytest.mark.parametrize("bad", [0, -3, "16"])
def test_max_concurrent_runs_must_be_at_least_one(bad: object) -> None:
    job = minimal_job()
    job["max_concurrent_runs"] = bad
    (problem,) = invalid(job)
    assert problem in (
        "max_concurrent_runs: must be an integer >= 1",
        "max_concurrent_runs: expected an integer",
    )


def test_job_cluster_keys_must_name_a_job_cluster() -> None:
    job = minimal_job()
    del job["tasks"][0]["existing_cluster_id"]
    job["tasks"][0]["job_cluster_key"] = "small"
    assert invalid(job) == ["tasks[0].job_cluster_key: no job cluster 'small'"]


def test_job_parameter_names_are_unique_and_well_formed() -> None:
    job = minimal_job()
    job["parameters"] = [
        {"name": "build_id", "default": ""},
        {"name": "build_id", "default": ""},
        {"name": "bad name", "default": ""},
    ]
    assert invalid(job) == [
        "parameters[1].name: 'build_id' is defined twice",
        "parameters[2].name: use letters, digits, '_', '-' and '.'",
    ]


def test_render_job_checks_the_rendered_settings(tmp_path: Path) -> None:
    path = tmp_path / "job-template.json"
    path.write_text(
        '{\n  "name": "${job_name}",\n  "max_concurrent_runs": "${runs}",\n  "tasks": [\n'
        '    {"task_key": "a", "timeout_seconds": "abc",\n'
        '     "depends_on": [{"task_key": "nope"}]}\n  ]\n}'
    )
    with pytest.raises(UsageError) as raised:
        render_job(path, values={"job_name": "j", "runs": 0})
    # file:line:col like a config error, one line per problem
    assert str(raised.value).splitlines() == [
        f"{path}:5:42: invalid job settings: tasks[0].timeout_seconds: expected an integer",
        f"{path}:3:26: invalid job settings: max_concurrent_runs: must be an integer >= 1",
        f"{path}:6:34: invalid job settings: tasks[0].depends_on[0].task_key: no task 'nope'",
    ]


def test_importing_the_stage_modules_loads_neither_the_sdk_nor_junitparser() -> None:
    code = (
        "import sys\n"
        "import orchestrator.config.loader, orchestrator.config.context\n"
        "import orchestrator.job.template\n"
        "import orchestrator.results.junit, orchestrator.results.publish\n"
        "heavy = [m for m in sys.modules if m.startswith(('databricks', 'junitparser'))]\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert done.stdout.strip() == "[]"
