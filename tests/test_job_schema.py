"""The shipped JobSettings snapshot: current with the installed SDK, and as strict as the SDK.

The template checks read ``orchestrator/job_settings_schema.json`` instead of importing the SDK
(which costs ~0.8 s). These tests keep that honest: regenerating from the installed SDK must give
exactly the shipped file (an SDK upgrade that changes the job settings fails here until ``python -m
orchestrator.job.settings_snapshot --write`` refreshes it), and the snapshot checks must report
exactly what a check walking the SDK's dataclasses reports, for every field of the sample job broken
in every way. The SDK they compare with is the locked one (``requirements.lock``), so a newer
release upstream never turns these red; a refresh of the lock refreshes the snapshot.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import json
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import UsageError
from orchestrator.job import settings_snapshot as job_schema
from orchestrator.job.settings_snapshot import misspelling_of
from orchestrator.job.template import render_job, validate_job_settings

REPO_ROOT = Path(__file__).resolve().parents[1]


def _locked_version(package: str) -> str:
    lock = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8")
    for line in lock.splitlines():
        name, sep, version = line.partition("==")
        if sep and name.strip().lower() == package:
            return version.split()[0].strip(" \\;")
    raise AssertionError(f"{package} is not in requirements.lock")


def test_the_installed_sdk_and_the_snapshot_are_the_locked_release() -> None:
    from importlib import metadata

    locked = _locked_version("databricks-sdk")
    assert metadata.version("databricks-sdk") == locked, "install from the lock: .ci/setup"
    assert job_schema.load_schema()["sdk_version"] == locked, (
        "the snapshot was made from another databricks-sdk than the lock's: "
        "run python -m orchestrator.job.settings_snapshot --write"
    )


def test_the_shipped_snapshot_is_what_the_installed_sdk_gives() -> None:
    shipped = job_schema.schema_path().read_text(encoding="utf-8")
    regenerated = job_schema.dumps(job_schema.generate())
    assert regenerated == shipped, (
        "orchestrator/job_settings_schema.json is stale for the installed databricks-sdk: "
        "run python -m orchestrator.job.settings_snapshot --write"
    )


def test_the_check_command_passes_on_the_shipped_snapshot() -> None:
    assert job_schema.main(["--check"]) == 0


def test_the_loaded_snapshot_starts_at_job_settings() -> None:
    schema = job_schema.load_schema()
    assert schema["root"] == "jobs.JobSettings"
    root = schema["types"]["jobs.JobSettings"]
    assert {"name", "tasks", "parameters", "queue"} <= set(root["fields"])
    assert schema["types"]["jobs.Task"]["required"] == ["task_key"]
    assert schema["types"]["jobs.Format"] == {"enum": ["MULTI_TASK", "SINGLE_TASK"]}


def test_validating_a_template_does_not_import_the_sdk() -> None:
    code = (
        "import sys\n"
        "from orchestrator.job.template import validate_job_settings\n"
        "try:\n"
        "    validate_job_settings({'name': 'j', 'tasks': [{'task_key': 'a', 'notebok_task': 1}]}, "
        "source='t')\n"
        "except Exception as e:\n"
        "    assert 'tasks[0].notebok_task: unknown field' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('not refused')\n"
        "print([m for m in sys.modules if m.startswith('databricks')])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    assert done.stdout.strip() == "[]"


# -- the snapshot checks agree with a check that walks the SDK's dataclasses ----------------


def _sdk_check(value: Any, hint: Any, path: str, problems: list[str]) -> None:
    """The check as it was written against the SDK's dataclasses, kept here as the reference."""
    where = path or "settings"
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is not None and options:
            _sdk_check(value, options[0], path, problems)
        return
    if hint is Any:
        return
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list")
            return
        for i, item in enumerate(value):
            _sdk_check(item, typing.get_args(hint)[0], f"{path}[{i}]", problems)
        return
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object")
            return
        for key, item in value.items():
            _sdk_check(item, typing.get_args(hint)[1], f"{path}.{key}", problems)
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [str(m.value) for m in hint]
        if value not in allowed:
            problems.append(f"{where}: expected one of {', '.join(allowed)}")
        return
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object")
            return
        hints = typing.get_type_hints(hint)
        fields = {f.name: f for f in dataclasses.fields(hint)}
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if key not in fields:
                # a near miss is a typo; anything else may be new in Databricks (a warning)
                close = misspelling_of(key, list(fields))
                if close is not None:
                    problems.append(f"{child}: unknown field (did you mean {close!r}?)")
                continue
            _sdk_check(item, hints[key], child, problems)
        for name, spec in fields.items():
            required = (
                spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            )
            if required and name not in value:
                problems.append(f"{f'{path}.{name}' if path else name}: required")
        return
    expected = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}
    ok = {
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
    }
    if hint in ok and not ok[hint]:
        problems.append(f"{where}: expected {expected[hint]}")


def _sample_job() -> dict[str, Any]:
    from tests.test_template import sample_values

    job = render_job(REPO_ROOT / "job-template.json", values=sample_values())
    # widen the sample with nested types it does not use: clusters, enums, maps, numbers
    job["job_clusters"] = [
        {
            "job_cluster_key": "c",
            "new_cluster": {
                "spark_version": "15.4.x-scala2.12",
                "num_workers": 2,
                "autoscale": {"min_workers": 1, "max_workers": 4},
                "azure_attributes": {"availability": "SPOT_AZURE", "spot_bid_max_price": -1.5},
                "spark_conf": {"spark.x": "1"},
            },
        }
    ]
    job["email_notifications"] = {"on_failure": ["a@example.com"]}
    job["health"] = {
        "rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 9}]
    }
    return job


def _mutations(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, replacement) for every position: wrong JSON types, null, an unknown key."""
    if path:
        for bad in (None, 7, 2.5, True, "text", [], [1], {}, {"zzz": 1}):
            if bad != value or type(bad) is not type(value):
                yield path, bad
    if isinstance(value, dict):
        yield (*path, "notbok_task"), 1
        yield (*path, "nam"), "x"
        for key, item in value.items():
            yield from _mutations(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _mutations(item, (*path, i))


def _apply(job: dict[str, Any], path: tuple[Any, ...], replacement: Any) -> dict[str, Any]:
    job = copy.deepcopy(job)
    target: Any = job
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    return job


def _problems(job: dict[str, Any]) -> list[str]:
    try:
        validate_job_settings(job, source="t")
    except UsageError as err:
        return [line.removeprefix("t: invalid job settings: ") for line in str(err).split("\n")]
    return []


def test_the_snapshot_checks_report_what_the_sdk_types_report() -> None:
    from databricks.sdk.service.jobs import JobSettings

    from orchestrator.job.template import _check_rules

    job = _sample_job()
    cases = list(_mutations(job))
    assert len(cases) > 500
    for path, replacement in cases:
        broken = _apply(job, path, replacement)
        expected: list[str] = []
        _sdk_check(broken, JobSettings, "", expected)
        expected += _check_rules(broken)  # the API's own rules come after the type checks
        first: dict[str, str] = {}  # one line per field: its first problem
        for line in expected:
            first.setdefault(line.split(": ", 1)[0], line)
        assert _problems(broken) == list(first.values()), (path, replacement)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("format", "SINGLE", "format: expected one of MULTI_TASK, SINGLE_TASK"),
        ("nam", "x", "nam: unknown field (did you mean 'name'?)"),
        ("timeout_seconds", "1", "timeout_seconds: expected an integer"),
        ("tags", {"a": None}, "tags.a: expected a string"),
        ("queue", None, None),
    ],
)
def test_snapshot_messages(field: str, value: Any, problem: str | None) -> None:
    job = _sample_job()
    job[field] = value
    if problem is None:
        assert _problems(job) == []
    else:
        assert _problems(job)[0] == problem


# -- a snapshot older than Databricks: unknown fields warn, typos still fail -------------------


@pytest.mark.parametrize(
    ("name", "known", "expected"),
    [
        ("notebok_task", ["notebook_task", "spark_jar_task"], "notebook_task"),
        ("taks", ["tasks", "tags"], "tasks"),
        ("timout_seconds", ["timeout_seconds"], "timeout_seconds"),
        ("max_concurent_runs", ["max_concurrent_runs"], "max_concurrent_runs"),
        ("nmae", ["name"], "name"),
        # fields added to the Jobs API after a snapshot: not a near miss of a known name
        ("ai_function_task", ["ai_runtime_task", "alert_task"], None),
        ("job_completion", ["continuous", "file_arrival"], None),
        ("serverless_compute", ["serverless_compute_id"], None),
        ("zzz", ["name"], None),
    ],
)
def test_a_near_miss_is_a_typo_and_anything_further_may_be_new(
    name: str, known: list[str], expected: str | None
) -> None:
    assert misspelling_of(name, known) == expected


@pytest.fixture
def older_snapshot(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The shipped snapshot as an older SDK would have made it: without JobSettings.description
    (the version is made up; the template checks read the snapshot through load_schema)."""
    schema = copy.deepcopy(job_schema.load_schema())
    schema["sdk_version"] = "0.0.1-old"
    del schema["types"]["jobs.JobSettings"]["fields"]["description"]
    import orchestrator.job.template

    monkeypatch.setattr(orchestrator.job.template, "load_schema", lambda: schema)
    return schema


def test_a_field_the_snapshot_lacks_is_a_warning_naming_field_version_and_refresh(
    older_snapshot: dict[str, Any],
) -> None:
    job = _sample_job()
    job["description"] = "new in Databricks"
    job["tasks"][0]["brand_new_task"] = {"output": {}}
    warnings = validate_job_settings(job, source="job-template.json")
    assert len(warnings) == 2
    first = warnings[0]
    assert first.startswith("job-template.json: description: not a field")
    assert (
        "databricks-sdk 0.0.1-old" in first
        and "orchestrator.job.settings_snapshot --write" in first
    )
    assert "\n" not in first
    assert warnings[1].startswith("job-template.json: tasks[0].brand_new_task: not a field")


@pytest.mark.slow
def test_an_older_snapshot_warns_and_the_build_still_passes_on_the_local_workspace(
    project: Path, older_snapshot: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.buildkit import build

    template = project / "job-template.json"
    settings = json.loads(template.read_text())
    settings["description"] = "a field newer than the snapshot"
    template.write_text(json.dumps(settings, indent=2))
    assert build(project, "--build-id", "new-field") == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "description: not a field" in line]
    assert len(warnings) == 1, err
    assert "databricks-sdk 0.0.1-old" in warnings[0]
    assert warnings[0].startswith("warning: orchestrator: ")


def test_a_misspelt_known_field_is_still_exit_2_with_the_suggestion(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.cli import main

    template = project / "job-template.json"
    settings = json.loads(template.read_text())
    settings["max_concurent_runs"] = 4
    template.write_text(json.dumps(settings, indent=2))
    for command in ("plan", "build"):
        code = main([command, "--config", str(project / "orchestrator.yml"), "--repo-name", "s"])
        assert code == 2
        err = capsys.readouterr().err
        assert "max_concurent_runs: unknown field (did you mean 'max_concurrent_runs'?)" in err
    assert not (project / ".orchestrator").exists()  # nothing started, nothing deployed
