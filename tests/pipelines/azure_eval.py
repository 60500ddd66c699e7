"""Azure Pipelines, as far as the pipelines in devops/ use it: compile-time template expressions
(``${{ if }}``, ``${{ elseif }}``, ``${{ else }}``, ``${{ each }}``, ``${{ expr }}``), macros
(``$(name)``), ``variables:`` blocks and variable groups, the predefined variables of a run, and
the jobs and steps of a scenario with their conditions and environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.pipelines.expressions import (
    STATUSES,
    TEMPLATE,
    as_text,
    condition_holds,
    evaluate,
    truthy,
)
from tests.pipelines.simulation import (
    AZURE_BUILD_ID,
    COMMIT,
    PULL_REQUEST,
    REPOSITORY,
    Job,
    Scenario,
    Simulation,
    Step,
)

_DIRECTIVE = re.compile(r"\$\{\{\s*(if|elseif|else|each)\b(.*?)\}\}", re.S)
MACRO = re.compile(r"\$\(([A-Za-z0-9_.-]+)\)")


def _directive(key: Any) -> tuple[str, str] | None:
    match = _DIRECTIVE.fullmatch(key.strip()) if isinstance(key, str) else None
    return (match.group(1), match.group(2).strip()) if match else None


def _branch(
    kind: str, expression: str, chain: bool | None, names: Mapping[str, Any]
) -> tuple[bool, bool | None]:
    """(take this branch, the if-chain state after it: None closed, else whether one was taken)."""
    if kind == "if":
        taken = truthy(evaluate(expression, names, "azure"))
        return taken, taken
    assert chain is not None, f"${{{{ {kind} }}}} without a preceding ${{{{ if }}}}"
    if kind == "else":
        return not chain, None
    if chain:
        return False, True
    taken = truthy(evaluate(expression, names, "azure"))
    return taken, taken


def expand_template(node: Any, names: Mapping[str, Any]) -> Any:
    """An Azure Pipelines document with its compile-time expressions applied."""
    if isinstance(node, list):
        items: list[Any] = []
        chain: bool | None = None
        for item in node:
            directive = (
                _directive(next(iter(item))) if isinstance(item, dict) and len(item) == 1 else None
            )
            if directive is None:
                chain = None
                items.append(expand_template(item, names))
                continue
            kind, expression = directive
            body = next(iter(item.values()))
            if kind == "each":
                chain = None
                loop = re.fullmatch(r"(\w+)\s+in\s+(.+)", expression, re.S)
                assert loop, f"unsupported ${{{{ each {expression} }}}}"
                for value in evaluate(loop.group(2), names, "azure") or []:
                    expanded = expand_template(body, {**names, loop.group(1): value})
                    items.extend(expanded if isinstance(expanded, list) else [expanded])
                continue
            taken, chain = _branch(kind, expression, chain, names)
            if taken:
                expanded = expand_template(body, names)
                items.extend(expanded if isinstance(expanded, list) else [expanded])
        return items
    if isinstance(node, dict):
        mapping: dict[Any, Any] = {}
        chain = None
        for key, value in node.items():
            directive = _directive(key)
            if directive is None:
                chain = None
                mapping[expand_template(key, names)] = expand_template(value, names)
                continue
            kind, expression = directive
            assert kind != "each", "${{ each }} inside a mapping: extend the test"
            taken, chain = _branch(kind, expression, chain, names)
            if taken:
                expanded = expand_template(value, names)
                assert isinstance(expanded, dict), f"{key} must hold a mapping here"
                mapping.update(expanded)
        return mapping
    if isinstance(node, str) and "${{" in node:
        whole = TEMPLATE.fullmatch(node.strip())
        if whole:
            return evaluate(whole.group(1), names, "azure")
        return TEMPLATE.sub(lambda m: as_text(evaluate(m.group(1), names, "azure")), node)
    return node


def substitute_macros(text: str, variables: Mapping[str, str]) -> tuple[str, set[str]]:
    """``$(name)`` replaced for known variables; also returns the names that are not known
    (variable-group and secret variables, whose values this test cannot know)."""
    known = {name.casefold(): value for name, value in variables.items()}
    unknown: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        value = known.get(match.group(1).casefold())
        if value is None:
            unknown.add(match.group(1))
            return match.group(0)
        return value

    return MACRO.sub(replace, text), unknown


def azure_variables(node: Any) -> tuple[dict[str, str], list[str]]:
    """The variables a ``variables:`` block defines, and the variable groups it links."""
    if node is None:
        return {}, []
    if isinstance(node, Mapping):
        return {str(k): as_text(v) for k, v in node.items()}, []
    values: dict[str, str] = {}
    groups: list[str] = []
    for item in node:
        if "group" in item:
            groups.append(str(item["group"]))
        elif "name" in item:
            values[str(item["name"])] = as_text(item.get("value"))
        else:
            raise AssertionError(f"unsupported variables entry {item!r}")
    return values, groups


def _env_name(variable: str) -> str:
    """The environment variable Azure Pipelines makes of a (non-secret) pipeline variable."""
    return variable.upper().replace(".", "_")


def _azure_predefined(scenario: Scenario, sim: Simulation) -> dict[str, str]:
    values = {
        "Build.BuildId": AZURE_BUILD_ID,
        "Build.BuildNumber": "20260101.1",
        "Build.Reason": {"pull_request": "PullRequest", "push": "BatchedCI"}.get(
            scenario.event, "Schedule"
        ),
        "Build.Repository.Name": REPOSITORY,
        "Build.SourceBranch": scenario.ref,
        "Build.SourceBranchName": scenario.ref.rsplit("/", 1)[-1],
        "Build.SourceVersion": COMMIT,
        "Build.SourcesDirectory": str(sim.root),
        "Build.ArtifactStagingDirectory": str(sim.temp / "a"),
        "System.DefaultWorkingDirectory": str(sim.root),
        "System.JobAttempt": "1",
        "System.CollectionUri": "https://dev.azure.com/contoso/",
        "System.TeamProject": "notebooks",
        "Agent.OS": "Linux",
        "Agent.TempDirectory": str(sim.temp),
        "Pipeline.Workspace": str(sim.temp),
    }
    if scenario.event == "pull_request":
        values |= {
            "System.PullRequest.PullRequestId": PULL_REQUEST,
            "System.PullRequest.PullRequestNumber": PULL_REQUEST,
            "System.PullRequest.SourceBranch": "refs/heads/feature/churn-threshold",
            "System.PullRequest.TargetBranch": "refs/heads/main",
        }
    return values


def azure_jobs(document: Mapping[str, Any], scenario: Scenario, sim: Simulation) -> list[Job]:
    predefined = _azure_predefined(scenario, sim)
    parameters = {p["name"]: p.get("default") for p in document.get("parameters") or []}
    doc = expand_template(dict(document), {"variables": predefined, "parameters": parameters})
    assert "stages" not in doc, "stages: extend the test"
    pipeline_vars, pipeline_groups = azure_variables(doc.get("variables"))
    raw_jobs = doc.get("jobs") or [{"job": "job", "steps": doc.get("steps") or []}]
    result: list[Job] = []
    for raw in raw_jobs:
        assert "job" in raw, f"only plain jobs are simulated, not {sorted(raw)}"
        job_vars, job_groups = azure_variables(raw.get("variables"))
        defined = {**pipeline_vars, **job_vars}
        variables = {**predefined, **defined}
        names = {"variables": variables}
        if not condition_holds(raw.get("condition"), "succeeded", names, "azure"):
            continue
        base_env = {"TF_BUILD": "True"} | {_env_name(k): v for k, v in variables.items()}
        steps = tuple(_azure_step(s, variables, base_env, sim) for s in raw.get("steps") or [])
        groups = (*pipeline_groups, *job_groups)
        result.append(Job(str(raw["job"]), raw, defined, groups, steps))
    return result


def _azure_step(
    raw: Mapping[str, Any],
    variables: Mapping[str, str],
    base_env: Mapping[str, str],
    sim: Simulation,
) -> Step:
    task = str(raw.get("task", ""))
    name = str(raw.get("displayName") or task or raw.get("checkout") or "step")
    inputs = {
        k: substitute_macros(as_text(v), variables)[0] for k, v in (raw.get("inputs") or {}).items()
    }
    script: str | None = None
    for key in ("script", "bash"):
        if key in raw:
            script, unknown = substitute_macros(str(raw[key]), variables)
            assert not unknown, (
                f"step {name!r} uses $({', $('.join(sorted(unknown))}) in its script: values from "
                "variable groups and secrets reach steps through env:, never the script text"
            )
    if task.split("@")[0] in ("CmdLine", "Bash"):
        script = inputs.get("script")
    for key in ("pwsh", "powershell"):
        assert "orchestrator" not in str(raw.get(key, "")), "only bash steps are simulated"
    env = dict(base_env)
    for key, value in (raw.get("env") or {}).items():
        text, unknown = substitute_macros(as_text(value), variables)
        env[str(key)] = (
            sim.value_for(str(key), f"$({', $('.join(sorted(unknown))})") if unknown else text
        )
    directory = raw.get("workingDirectory")
    cwd = Path(substitute_macros(str(directory), variables)[0]) if directory else sim.root
    runs = {
        s: condition_holds(raw.get("condition"), s, {"variables": variables}, "azure")
        for s in STATUSES
    }
    return Step(name, raw, runs, script, inputs, env, cwd)
