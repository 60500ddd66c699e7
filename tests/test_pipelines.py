"""The CI pipelines in devops/ (Azure Pipelines, and their GitHub Actions equivalents in
devops/github/): their structure, and the orchestrator commands they run, executed in-process
against the local workspace with each pipeline's variables simulated through the environment,
so a pipeline can never drift from the CLI (an unknown command, flag or target fails here).

How a pipeline run is simulated:

* The scenarios come from the pipeline's triggers: a pull request into main, a push to main, the
  schedule. For each, the CI system's predefined variables are set the way it sets them (Azure
  DevOps: ``TF_BUILD``, ``BUILD_BUILDID``, ...; GitHub: ``GITHUB_ACTIONS``, ``GITHUB_RUN_ID``,
  ...) and the pipeline's expressions are evaluated with them: Azure's template expressions
  (``${{ if }}``, ``${{ else }}``, ``${{ each }}``), macros (``$(name)``) and conditions, GitHub's
  ``${{ }}`` expressions, ``if:`` and matrices. Syntax the evaluator does not know fails the test
  instead of being skipped: extend the evaluator (tests/pipelines/) rather than working around it.
* A step's ``env:`` is what reaches the orchestrator. Values that come from variable groups,
  GitHub environments or secrets (unknown here) are replaced by what they mean for the local
  workspace, chosen by the variable they are mapped to (:meth:`Simulation.values`):
  ``DATABRICKS_HOST`` is the test server, the cluster is the local one, Azure identities are fakes.
* Two things are changed on top (:meth:`Simulation.overrides`), because the local workspace is not
  reached the way Azure is: authentication is a PAT (``DATABRICKS_AUTH_TYPE`` and
  ``ORCHESTRATOR_AUTH_TYPE`` set to ``pat``, ``DATABRICKS_TOKEN``) instead of the service
  principal, and storage is a local folder (``ORCHESTRATOR_STORAGE_ROOT`` and
  ``ORCHESTRATOR_STORAGE_CLUSTER_PATH``) instead of the targets' ``abfss://`` URLs.
* Key Vault (the targets' ``key_vault_url``, where prod keeps its service principal's secret) is
  a local double: ``orchestrator.secrets.keyvault_for`` returns the real ``SecretClient``-based
  resolver aimed at tests/kvserver.py's TLS server with a fake credential, filled with a value
  for every ``{keyvault: name}`` the target references.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters import keyvault as secrets_module
from orchestrator.adapters.databricks import runs as orchestrator_jobs
from orchestrator.adapters.keyvault import KeyVaultSecrets
from orchestrator.config.loader import load_config
from orchestrator.config.schema import BuildConfig, is_secret_name
from orchestrator.local.server import LocalWorkspace
from tests.buildkit import BUILD_ROOT
from tests.conftest import sdk_client
from tests.kvserver import FakeCredential, client_options, key_vault
from tests.pipelines.azure_eval import MACRO
from tests.pipelines.commands import PIPELINE_FILES, Pipeline, load_pipeline, orchestrator_commands
from tests.pipelines.expressions import STATUSES, System
from tests.pipelines.github_eval import github_context, github_expressions
from tests.pipelines.running import (
    Vaults,
    check_published,
    check_secrets,
    result_patterns,
    results_and_artifacts,
    run_invocation,
    target_config,
)
from tests.pipelines.simulation import (
    AZURE_BUILD_ID,
    PR_INTO_MAIN,
    PUSH_TO_MAIN,
    REPO,
    REPO_NAME,
    SCHEDULED,
    Job,
    Scenario,
    Simulation,
)

#: Where the README tells users to copy the GitHub workflows (the top level here is fixed).
GITHUB_DESTINATIONS: Mapping[str, str] = {
    "devops/github/ci.yml": ".github/workflows/notebooks-ci.yml",
    "devops/github/cleanup.yml": ".github/workflows/notebooks-cleanup.yml",
}
#: The CI pipelines build when any of these change (issue 5).
PROJECT_PATHS = frozenset({"databricks/**", "models/**", "job-template.json", "orchestrator.yml"})

#: How long the orchestrator waits for a cancelled run to end (after SIGINT/SIGTERM).
CANCEL_WAIT = float(inspect.signature(orchestrator_jobs.cancel_run).parameters["timeout"].default)
#: Time a CI job needs besides the orchestrator's own limits: install, deploy, collect, publish.
JOB_OVERHEAD = 15 * 60

# Literal secrets that must never appear in a pipeline file.
_SECRET_LITERALS = (
    re.compile(r"dapi[0-9a-f]{32}"),  # a Databricks personal access token
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"),  # a JWT
    re.compile(r"[A-Za-z0-9+/]{60,}={0,2}"),  # a storage account key
    re.compile(r"(?i)AccountKey=|SharedAccessSignature=|[?&]sig="),  # connection string, SAS
    re.compile(r"[A-Za-z0-9_~.-]{3}8Q~[A-Za-z0-9_~.-]{31,34}"),  # an Entra ID client secret
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)


def _strings(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every string in a document (keys too), with where it is."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield (*path, str(key)), str(key)
            yield from _strings(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _strings(item, (*path, str(index)))
    elif isinstance(node, str):
        yield path, node


PIPELINES = [load_pipeline(path) for path in PIPELINE_FILES]
RUNS = [pytest.param(p, s, id=f"{p.path}-{s.name}") for p in PIPELINES for s in p.scenarios()]


def by_path(path: str) -> Pipeline:
    return next(p for p in PIPELINES if p.path == path)


@pytest.fixture
def sim(tmp_path: Path) -> Simulation:
    """For the structural tests: no server, the repo itself as the checkout."""
    return Simulation(
        root=REPO,
        temp=tmp_path / "agent-temp",
        host="https://adb-1234567890123456.7.azuredatabricks.net",
        storage=tmp_path / "storage",
    )


# -- structure ---------------------------------------------------------------------------------


def test_every_pipeline_file_in_devops_is_known_and_runs_the_orchestrator(sim: Simulation) -> None:
    found = {p.relative_to(REPO).as_posix() for p in (REPO / "devops").rglob("*.y*ml")}
    assert found == set(PIPELINE_FILES)
    for pipeline in PIPELINES:
        commands = [
            i.command
            for scenario in pipeline.scenarios()
            for i in pipeline.invocations(scenario, sim)
            if i.command
        ]
        assert set(commands) == {"cleanup" if pipeline.is_cleanup else "build"}, pipeline.path


GITHUB_WORKFLOWS = sorted(path for path, system in PIPELINE_FILES.items() if system == "github")
#: The tools of the audit, from this environment (the lock pins them).
BIN = Path(sys.executable).parent
_PINNED = re.compile(r"^[^@\s]+@[0-9a-f]{40} # v\d+(\.\d+){0,2}$")


def _tool(name: str) -> str:
    tool = BIN / name
    assert tool.is_file(), f"{name} is not installed next to {sys.executable} (requirements.lock)"
    return str(tool)


def test_github_workflows_pass_zizmor_offline_with_no_finding() -> None:
    """zizmor (the regular persona, offline: no GitHub API) reports nothing: actions pinned to
    commits, checkout without persisted credentials, no injection, no excessive permissions."""
    result = subprocess.run(
        [
            _tool("zizmor"),
            "--offline",
            "--no-progress",
            "--color=never",
            "--format=json",
            *GITHUB_WORKFLOWS,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == [], result.stdout


def test_github_workflows_pass_the_workflow_json_schema() -> None:
    result = subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *GITHUB_WORKFLOWS,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", GITHUB_WORKFLOWS)
def test_actions_are_pinned_to_commits_and_checkout_keeps_no_credentials(path: str) -> None:
    """What zizmor checks, restated so the rule is readable here: every `uses:` is
    ``owner/repo@<40 hex> # vX.Y.Z``, and every checkout sets ``persist-credentials: false``."""
    lines = [line.strip() for line in (REPO / path).read_text(encoding="utf-8").splitlines()]
    uses = [line.split("uses:", 1)[1].strip() for line in lines if "uses:" in line]
    assert uses, path
    for ref in uses:
        assert _PINNED.match(ref), f"{path}: {ref!r} is not pinned to a commit with its version"
    steps = [s for job in by_path(path).document["jobs"].values() for s in job["steps"]]
    for step in steps:
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, path


def _path_filters(pipeline: Pipeline, trigger: str) -> tuple[list[str], list[str]]:
    """(branches, paths) a CI trigger includes."""
    node = pipeline.triggers[trigger]
    if pipeline.system == "github":
        return list(node.get("branches", [])), list(node.get("paths", []))
    return list(node["branches"]["include"]), list(node["paths"]["include"])


@pytest.mark.parametrize("path", ["devops/azure-pipelines-ci.yml", "devops/github/ci.yml"])
def test_ci_pipelines_validate_pull_requests_and_main_when_the_project_changes(path: str) -> None:
    pipeline = by_path(path)
    assert pipeline.scenarios() == [PR_INTO_MAIN, PUSH_TO_MAIN]
    own_path = GITHUB_DESTINATIONS.get(path, path)
    for trigger in ("pr", "trigger") if pipeline.system == "azure" else ("pull_request", "push"):
        branches, paths = _path_filters(pipeline, trigger)
        assert branches == ["main"], trigger
        assert set(paths) >= PROJECT_PATHS, trigger
        assert own_path in paths, f"{trigger}: a change to the pipeline itself must be validated"
        for pattern in set(paths) - {own_path}:
            folder = pattern.removesuffix("/**")
            assert (REPO / folder).exists(), f"{trigger}: {pattern} matches nothing in the repo"


def test_a_new_push_to_a_pull_request_cancels_its_running_build(sim: Simulation) -> None:
    assert by_path("devops/azure-pipelines-ci.yml").document["pr"]["autoCancel"] is True
    concurrency = by_path("devops/github/ci.yml").document["concurrency"]
    group, cancel = concurrency["group"], str(concurrency["cancel-in-progress"])
    pull_request = {"github": github_context(PR_INTO_MAIN, sim, "")[0]}
    main = {"github": github_context(PUSH_TO_MAIN, sim, "")[0]}
    assert github_expressions(group, pull_request, "") != github_expressions(group, main, "")
    assert github_expressions(cancel, pull_request, "") == "true"
    assert github_expressions(cancel, main, "") == "false"  # builds of main always finish


def _is_daily(cron: str) -> bool:
    minute, hour, *rest = cron.split()
    return minute.isdigit() and hour.isdigit() and rest == ["*", "*", "*"]


@pytest.mark.parametrize(
    "path", ["devops/azure-pipelines-cleanup.yml", "devops/github/cleanup.yml"]
)
def test_cleanup_pipelines_run_daily_and_never_on_pushes_or_pull_requests(path: str) -> None:
    pipeline = by_path(path)
    assert pipeline.scenarios() == [SCHEDULED]
    if pipeline.system == "azure":
        assert pipeline.document["trigger"] == "none"
        assert pipeline.document["pr"] == "none"
        schedules = pipeline.document["schedules"]
        # builds age without commits: run even when nothing changed since the last run
        assert all(s.get("always") is True for s in schedules)
        assert all(s["branches"]["include"] == ["main"] for s in schedules)
    else:
        assert set(pipeline.triggers) == {"schedule", "workflow_dispatch"}
        schedules = pipeline.triggers["schedule"]
    assert schedules
    assert all(_is_daily(s["cron"]) for s in schedules), schedules


def test_pull_requests_build_on_dev_main_on_prod_and_cleanup_covers_both(sim: Simulation) -> None:
    for path in ("devops/azure-pipelines-ci.yml", "devops/github/ci.yml"):
        pipeline = by_path(path)
        targets = {
            scenario.name: {i.target for i in pipeline.invocations(scenario, sim) if i.command}
            for scenario in pipeline.scenarios()
        }
        assert targets == {"pull-request": {"dev"}, "main": {"prod"}}, path
    for path in ("devops/azure-pipelines-cleanup.yml", "devops/github/cleanup.yml"):
        cleanup = [i for i in by_path(path).invocations(SCHEDULED, sim) if i.command]
        assert sorted(str(i.target) for i in cleanup) == ["dev", "prod"], path
        for invocation in cleanup:
            argv = invocation.argv
            assert argv[argv.index("--older-than") + 1] == "14d", invocation
            assert argv[argv.index("--keep-last") + 1] == "20", invocation
            assert "--dry-run" not in argv, invocation


def test_every_command_gets_the_settings_of_its_own_target(sim: Simulation) -> None:
    """Building prod with dev's host (or the reverse) must not be possible: the variable group
    (Azure) or environment (GitHub) a job reads is the one named after its target."""
    for pipeline in PIPELINES:
        for scenario in pipeline.scenarios():
            jobs = {j.name: j for j in pipeline.jobs(scenario, sim)}
            for invocation in pipeline.invocations(scenario, sim):
                if not invocation.command:
                    continue
                job = jobs[invocation.job]
                if pipeline.system == "github":
                    assert job.environment == invocation.target, invocation
                else:
                    settings = [g for g in job.groups if g != "notebook-ci-secrets"]
                    assert settings == [f"notebook-ci-{invocation.target}"], invocation


@pytest.mark.parametrize("path", ["devops/azure-pipelines-ci.yml", "devops/github/ci.yml"])
def test_test_results_and_notebooks_are_published_even_when_the_build_fails_or_is_cancelled(
    path: str, sim: Simulation
) -> None:
    pipeline = by_path(path)
    config = load_config(
        REPO / "orchestrator.yml", target="local", overrides={}, environ={}, root=REPO
    )
    for scenario in pipeline.scenarios():
        (job,) = pipeline.jobs(scenario, sim)
        publishers, result_uploads, notebook_uploads = results_and_artifacts(job, sim.root)
        assert publishers, "test results must reach the CI's test tab"
        assert notebook_uploads, "the executed notebooks must be published"
        if pipeline.system == "github":
            assert result_uploads, "the JUnit files must be kept as an artifact too"
        for step in (*publishers, *result_uploads, *notebook_uploads):
            # always(): after success, failure and cancel alike (succeededOrFailed() is not enough)
            assert all(step.runs[s] for s in STATUSES), f"{step.name} must run always()"
        for step in publishers:
            if step.uses.startswith("PublishTestResults@"):
                assert step.inputs["testResultsFormat"] == "JUnit"
            for pattern in result_patterns(step, sim.root):
                # the file the build writes, TEST-<repo>-<build id>.xml, matches what is published
                written = config.paths.results / f"TEST-{REPO_NAME}-{AZURE_BUILD_ID}.xml"
                assert Path(written).match(str(pattern)), (pattern, written)


def _job_timeouts(job: Job, system: System) -> tuple[float, float | None]:
    """(job timeout, cancel timeout) in seconds, as the CI system applies them."""
    if system == "github":
        return float(job.document["timeout-minutes"]) * 60, None
    return float(job.document["timeoutInMinutes"]) * 60, float(
        job.document["cancelTimeoutInMinutes"]
    ) * 60


@pytest.mark.parametrize("pipeline", [pytest.param(p, id=p.path) for p in PIPELINES])
def test_jobs_outlast_the_orchestrators_own_timeouts_and_let_it_cancel_its_run(
    pipeline: Pipeline, sim: Simulation
) -> None:
    for scenario in pipeline.scenarios():
        for job in pipeline.jobs(scenario, sim):
            assert (
                "timeout-minutes" if pipeline.system == "github" else "timeoutInMinutes"
            ) in job.document
            timeout, cancel_timeout = _job_timeouts(job, pipeline.system)
            invocations = [
                i
                for i in pipeline.invocations(scenario, sim)
                if i.job == job.name and i.command == "build"
            ]
            for invocation in invocations:
                config = load_config(
                    REPO / "orchestrator.yml",
                    target=str(invocation.target),
                    overrides={},
                    environ={**invocation.env, **sim.overrides()},
                    root=REPO,
                )
                own = config.timeouts.build + config.timeouts.cluster_start
                assert timeout >= own + JOB_OVERHEAD, (
                    f"{job.name}: the job's {timeout / 60:.0f} min end before the orchestrator's "
                    f"own limit on {invocation.target} ({own / 60:.0f} min) and the overhead"
                )
            if pipeline.system == "azure":
                assert cancel_timeout is not None and cancel_timeout >= 3 * 60, job.name
                if invocations:
                    # the agent's SIGINT grace (ms) covers cancelling the run and waiting for it
                    grace = float(job.variables["PROCESS_SIGINT_TIMEOUT"]) / 1000
                    assert grace >= CANCEL_WAIT + 30, grace
                    assert cancel_timeout >= grace + 60, "and the publish steps after it"


def test_orchestrator_steps_exec_it_so_that_a_cancel_reaches_it(sim: Simulation) -> None:
    for pipeline in PIPELINES:
        for scenario in pipeline.scenarios():
            for invocation in pipeline.invocations(scenario, sim):
                if invocation.command:
                    assert invocation.exec_, f"{invocation}: start it with `exec`"


def _installed_extras(script: str) -> set[str] | None:
    """The extras of a `python -m pip install .[...]` line of a script (None: no such line)."""
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if words[:4] == ["python", "-m", "pip", "install"] and len(words) == 5:
            match = re.fullmatch(r"\.(?:\[([\w,-]*)\])?", words[4])
            if match:
                return {e.strip() for e in (match.group(1) or "").split(",") if e.strip()}
    return None


@pytest.mark.parametrize("pipeline", [pytest.param(p, id=p.path) for p in PIPELINES])
def test_python_3_11_and_the_package_without_the_local_extra_come_first(
    pipeline: Pipeline, sim: Simulation
) -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"].get(
        "optional-dependencies", {}
    )
    for scenario in pipeline.scenarios():
        for job in pipeline.jobs(scenario, sim):
            steps = list(job.steps)
            python = [
                i
                for i, s in enumerate(steps)
                if s.uses.startswith(("UsePythonVersion@", "actions/setup-python@"))
            ]
            assert python, f"{job.name}: no Python set up"
            inputs = steps[python[0]].inputs
            assert (inputs.get("versionSpec") or inputs.get("python-version")) == "3.11"
            installs = [
                i
                for i, s in enumerate(steps)
                if s.script and _installed_extras(s.script) is not None
            ]
            assert installs, f"{job.name}: no `python -m pip install .`"
            installed = _installed_extras(str(steps[installs[0]].script)) or set()
            # the local workspace's kernels are not for CI agents, which drive a real workspace
            assert "local" not in installed
            if "azure" in extras:  # Key Vault and ADLS Gen2 as an extra: the targets use both
                assert "azure" in installed, f"{job.name}: install '.[azure]'"
            first_command = min(
                i for i, s in enumerate(steps) if s.script and orchestrator_commands(s.script)
            )
            assert python[0] < installs[0] <= first_command


@pytest.mark.parametrize("pipeline", [pytest.param(p, id=p.path) for p in PIPELINES])
def test_secrets_reach_the_orchestrator_only_as_references_in_env(
    pipeline: Pipeline, sim: Simulation
) -> None:
    for where, text in _strings(pipeline.document):
        for pattern in _SECRET_LITERALS:
            assert not pattern.search(text), f"{'.'.join(where)}: looks like a literal secret"
    mapped: set[str] = set()
    for scenario in pipeline.scenarios():
        for job in pipeline.jobs(scenario, sim):
            for name in job.variables:
                assert not is_secret_name(name), (
                    f"variable {name}: secrets belong in a variable group"
                )
            for step in job.steps:
                for key, value in (step.document.get("env") or {}).items():
                    if not is_secret_name(str(key)):
                        continue
                    if pipeline.system == "azure":
                        match = re.fullmatch(r"\$\(([A-Za-z0-9_.-]+)\)", str(value))
                        assert match, f"{step.name}: env {key} must be $(secret-variable)"
                        assert match.group(1) not in job.variables, f"{key}: a variable in the file"
                    else:
                        match = re.fullmatch(
                            r"\$\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}", str(value)
                        )
                        assert match, f"{step.name}: env {key} must be ${{{{ secrets.NAME }}}}"
                    mapped.add(match.group(1))
            if pipeline.system == "azure":
                assert job.groups, (
                    f"{job.name}: secrets come from a variable group linked to Key Vault"
                )
    assert mapped, "the orchestrator needs the service principal's secret"
    for where, text in _strings(pipeline.document):
        in_env = len(where) >= 2 and where[-2] == "env" and is_secret_name(where[-1])
        if pipeline.system == "github":
            assert in_env or "secrets." not in text, f"{'.'.join(where)}: secrets only in env:"
        else:
            used = {m.group(1) for m in MACRO.finditer(text)}
            assert in_env or not used & mapped, f"{'.'.join(where)}: secrets only in env:"


def test_the_readme_shows_where_to_copy_the_github_workflows() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "## Wiring the pipelines into a project" in readme
    for source, destination in GITHUB_DESTINATIONS.items():
        assert source in readme and destination in readme


# -- running the commands ----------------------------------------------------------------------


@pytest.fixture
def vaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vaults]:
    with key_vault(tmp_path / "kv", {}) as double:
        vaults = Vaults(double)

        def keyvault_for(config: BuildConfig) -> KeyVaultSecrets | None:
            if config.key_vault_url is None:
                return None
            vaults.opened.append(config.key_vault_url)
            credential: Any = FakeCredential()
            return KeyVaultSecrets(double.url, credential=credential, **client_options(double))

        monkeypatch.setattr(secrets_module, "keyvault_for", keyvault_for)
        yield vaults


@pytest.mark.slow
@pytest.mark.parametrize(("pipeline", "scenario"), RUNS)
def test_pipeline_commands_run_against_the_local_workspace(
    pipeline: Pipeline,
    scenario: Scenario,
    project: Path,
    server: LocalWorkspace,
    vaults: Vaults,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = Simulation(project, tmp_path / "agent-temp", server.url, tmp_path / "storage")
    sim.temp.mkdir()
    invocations = pipeline.invocations(scenario, sim)
    assert any(i.command for i in invocations)
    for invocation in invocations:
        if not invocation.command:  # `orchestrator --version` after the install
            outcome = run_invocation(invocation, sim, monkeypatch, capsys)
            assert outcome.code == 0, f"{invocation}\n{outcome.err}"
            continue
        config = target_config(invocation, sim)
        if invocation.command == "cleanup":
            # a fresh build, kept: the retention (14 days, 20 builds) must leave it alone
            vaults.fill(config)
            seed = ("build", "--target", str(invocation.target), "--keep", "--build-id", "seed-1")
            seeded = run_invocation(invocation, sim, monkeypatch, capsys, argv=seed)
            assert seeded.code == 0, seeded.out + seeded.err
        # new values per command: masking is per process, and these commands share one
        secrets = vaults.fill(config)
        outcome = run_invocation(invocation, sim, monkeypatch, capsys)
        assert outcome.code == 0, f"{invocation}\n{outcome.out}\n{outcome.err}"
        check_secrets(outcome, secrets, config, vaults, pipeline.system)
        if invocation.command == "build":
            check_published(invocation, pipeline, scenario, sim)
            if pipeline.system == "azure":
                assert "##[group]Test results" in outcome.out  # Azure DevOps detected
            else:
                assert (sim.temp / "step-summary.md").read_text(encoding="utf-8").strip()
        else:
            assert sdk_client(server).workspace.get_status(f"{BUILD_ROOT}/{REPO_NAME}/seed-1")
            assert (sim.storage / REPO_NAME / "seed-1").is_dir()
