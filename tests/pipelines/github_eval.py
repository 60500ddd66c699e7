"""GitHub Actions, as far as the workflows in devops/github/ use them: the ``github`` context and
environment of a run, ``${{ }}`` expressions in strings (never reading ``secrets`` or ``vars``
outside ``env:``), ``env:`` at workflow, job and step level, matrices, ``if:``, environments, and
the jobs and steps of a scenario.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from tests.pipelines.expressions import (
    STATUSES,
    TEMPLATE,
    as_text,
    condition_holds,
    evaluate,
)
from tests.pipelines.simulation import (
    COMMIT,
    GITHUB_RUN_ID,
    PULL_REQUEST,
    REPOSITORY,
    Job,
    Scenario,
    Simulation,
    Step,
)


def github_context(
    scenario: Scenario, sim: Simulation, workflow: str
) -> tuple[dict[str, Any], dict[str, str]]:
    ref_name = scenario.ref.removeprefix("refs/heads/").removeprefix("refs/pull/")
    github: dict[str, Any] = {
        "event_name": scenario.event,
        "ref": scenario.ref,
        "ref_name": ref_name,
        "repository": REPOSITORY,
        "repository_owner": REPOSITORY.split("/")[0],
        "run_id": GITHUB_RUN_ID,
        "run_attempt": "1",
        "run_number": "42",
        "sha": COMMIT,
        "workflow": workflow,
        "server_url": "https://github.com",
        "workspace": str(sim.root),
        "head_ref": "",
        "base_ref": "",
        "event": {},
    }
    if scenario.event == "pull_request":
        github |= {
            "head_ref": "feature/churn-threshold",
            "base_ref": "main",
            "event": {"pull_request": {"number": float(PULL_REQUEST)}},
        }
    env = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": scenario.event,
        "GITHUB_REF": scenario.ref,
        "GITHUB_REF_NAME": ref_name,
        "GITHUB_HEAD_REF": github["head_ref"],
        "GITHUB_BASE_REF": github["base_ref"],
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_REPOSITORY_OWNER": github["repository_owner"],
        "GITHUB_RUN_ID": GITHUB_RUN_ID,
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_RUN_NUMBER": "42",
        "GITHUB_SHA": COMMIT,
        "GITHUB_WORKFLOW": workflow,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_WORKSPACE": str(sim.root),
        "GITHUB_STEP_SUMMARY": str(sim.temp / "step-summary.md"),
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(sim.temp),
    }
    return github, env


def github_expressions(text: str, names: Mapping[str, Any], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        assert not re.search(r"\b(?:secrets|vars)\.", match.group(1)), (
            f"{where} reads secrets or variables: only env: may, so they reach the process and "
            "never the script text"
        )
        return as_text(evaluate(match.group(1), names, "github"))

    return TEMPLATE.sub(replace, text)


def _github_env(
    source: Mapping[str, Any], names: Mapping[str, Any], sim: Simulation
) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in source.items():
        text = as_text(value)
        if re.search(r"\$\{\{[^}]*\b(?:secrets|vars)\.", text):
            env[str(key)] = sim.value_for(str(key), text)
        else:
            env[str(key)] = github_expressions(text, names, f"env {key}")
    return env


def _github_matrix(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    matrix = (job.get("strategy") or {}).get("matrix")
    if matrix is None:
        return [{}]
    assert isinstance(matrix, Mapping), "a matrix from an expression: extend the test"
    assert not {"include", "exclude"} & set(matrix), "matrix include/exclude: extend the test"
    keys = list(matrix)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*matrix.values())]


def github_jobs(document: Mapping[str, Any], scenario: Scenario, sim: Simulation) -> list[Job]:
    github, base_env = github_context(scenario, sim, str(document.get("name", "")))
    result: list[Job] = []
    for job_id, job in (document.get("jobs") or {}).items():
        for matrix in _github_matrix(job):
            names: dict[str, Any] = {
                "github": github,
                "matrix": matrix,
                "inputs": {},
                "needs": {},
                "strategy": {"job-index": 0.0},
                "runner": {"os": "Linux", "temp": str(sim.temp)},
                "job": {},
                "steps": {},
                "env": {},
            }
            if not condition_holds(job.get("if"), "succeeded", names, "github"):
                continue
            declared = _github_env(document.get("env") or {}, names, sim)
            declared |= _github_env(job.get("env") or {}, names, sim)
            names["env"] = declared
            job_env = base_env | declared
            shell = ((job.get("defaults") or {}).get("run") or {}).get("shell", "bash")
            steps = tuple(
                _github_step(s, names, job_env, shell, sim) for s in job.get("steps") or []
            )
            label = (
                f"{job_id} ({', '.join(as_text(v) for v in matrix.values())})" if matrix else job_id
            )
            environment = job.get("environment")
            if isinstance(environment, Mapping):
                environment = environment.get("name")
            if environment is not None:
                environment = github_expressions(str(environment), names, "environment")
            result.append(Job(label, job, {}, (), steps, environment))
    return result


def _github_step(
    raw: Mapping[str, Any],
    names: Mapping[str, Any],
    job_env: Mapping[str, str],
    shell: str,
    sim: Simulation,
) -> Step:
    name = str(raw.get("name") or raw.get("uses") or raw.get("run", "step")).splitlines()[0]
    inputs = {
        str(k): github_expressions(as_text(v), names, f"step {name!r} with: {k}")
        for k, v in (raw.get("with") or {}).items()
    }
    script: str | None = None
    if "run" in raw:
        if raw.get("shell", shell) != "bash":
            assert "orchestrator" not in str(raw["run"]), "only bash steps are simulated"
        script = github_expressions(str(raw["run"]), names, f"step {name!r} run:")
    env = dict(job_env) | _github_env(raw.get("env") or {}, names, sim)
    directory = raw.get("working-directory")
    cwd = sim.root / str(directory) if directory else sim.root
    runs = {s: condition_holds(raw.get("if"), s, names, "github") for s in STATUSES}
    return Step(name, raw, runs, script, inputs, env, cwd)
