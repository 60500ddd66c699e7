"""Running a pipeline's ``orchestrator`` commands in-process, with the step's environment (and
the simulation's overrides) only, and checking what they did: the files the pipeline publishes,
and the Key Vault secrets read and masked (:class:`Vaults` stands in for the targets' vaults).
"""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.config.loader import load_config, resolve_target
from orchestrator.config.schema import BuildConfig
from tests.kvserver import KeyVaultDouble
from tests.pipelines.commands import Invocation, Pipeline
from tests.pipelines.expressions import System
from tests.pipelines.simulation import REPO, Job, Scenario, Simulation, Step

# Environment variables a CI agent (or a developer's shell) may have that must not leak in.
_CLEARED_PREFIXES = (
    "TF_BUILD",
    "BUILD_",
    "SYSTEM_",
    "AGENT_",
    "PIPELINE_",
    "GITHUB_",
    "RUNNER_",
    "ORCHESTRATOR_",
    "DATABRICKS_",
    "ARM_",
    "AZURE_",
    "PROCESS_",
)


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def run_invocation(
    invocation: Invocation,
    sim: Simulation,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    argv: tuple[str, ...] | None = None,
) -> Outcome:
    """Run one command in-process with the step's environment (and the test's overrides) only."""
    with monkeypatch.context() as patch:
        for name in list(os.environ):
            if name == "CI" or name.startswith(_CLEARED_PREFIXES):
                patch.delenv(name)
        for key, value in {**invocation.env, **sim.overrides()}.items():
            patch.setenv(key, value)
        patch.chdir(invocation.cwd)
        capsys.readouterr()
        try:
            code = main(list(argv or invocation.argv))
        except SystemExit as exc:  # argparse: --help, --version, usage errors
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        out, err = capsys.readouterr()
    return Outcome(code, out, err)


def target_config(invocation: Invocation, sim: Simulation) -> BuildConfig:
    """The configuration the command runs with (the step's environment and the overrides)."""
    environ = {**invocation.env, **sim.overrides()}
    target = resolve_target(invocation.target, environ)
    return load_config(None, target=target, overrides={}, environ=environ, root=invocation.cwd)


@dataclass
class Vaults:
    """Stands in for the targets' Key Vaults: every vault URL resolves to one local double
    (tests/kvserver.py: the real SecretClient over TLS, with a fake credential), filled with a
    value for each ``{keyvault: name}`` the target references."""

    double: KeyVaultDouble
    opened: list[str] = field(default_factory=list)  # the vault URLs asked for

    def fill(self, config: BuildConfig) -> dict[str, str]:
        refs = [r.name for r in config.secret_refs().values() if r.source == "keyvault"]
        values = {name: f"simulated-{name}-{uuid.uuid4().hex}" for name in refs}
        self.double.secrets.update(values)
        return values

    def read(self) -> set[str]:
        """The secrets read (GET /secrets/<name>/<version>, with a token)."""
        return {path.strip("/").split("/")[1] for path, auth in self.double.seen if auth}


def results_and_artifacts(job: Job, root: Path) -> tuple[list[Step], list[Step], list[Step]]:
    """(test-result publishers, test-results uploads, executed-notebook uploads) of a job."""
    results = [
        s
        for s in job.steps
        if s.uses.startswith(
            (
                "PublishTestResults@",
                "EnricoMi/publish-unit-test-result-action",
                "dorny/test-reporter",
            )
        )
    ]
    uploads = [
        s
        for s in job.steps
        if s.uses.startswith(("PublishPipelineArtifact@", "actions/upload-artifact@"))
    ]

    def folder(step: Step) -> str:
        path = step.inputs.get("targetPath") or step.inputs.get("path") or ""
        return Path(path).as_posix().removeprefix(root.as_posix() + "/").rstrip("/")

    config = load_config(
        REPO / "orchestrator.yml", target="local", overrides={}, environ={}, root=REPO
    )
    results_dir = config.paths.results.relative_to(REPO).as_posix()
    artifacts_dir = config.paths.artifacts.relative_to(REPO).as_posix()
    return (
        results,
        [s for s in uploads if folder(s) == results_dir],
        [s for s in uploads if folder(s) == artifacts_dir],
    )


def result_patterns(step: Step, root: Path) -> list[Path]:
    """Where a publisher looks for JUnit files: absolute glob patterns."""
    if step.uses.startswith("PublishTestResults@"):
        base = Path(step.inputs.get("searchFolder") or root)
        return [base / p.strip() for p in step.inputs["testResultsFiles"].splitlines() if p.strip()]
    files = step.inputs.get("files") or step.inputs.get("path") or ""
    return [root / p.strip() for p in files.splitlines() if p.strip()]


def check_published(
    invocation: Invocation, pipeline: Pipeline, scenario: Scenario, sim: Simulation
) -> None:
    """What the build wrote is what the pipeline publishes, and the sample's tests passed."""
    (job,) = [j for j in pipeline.jobs(scenario, sim) if j.name == invocation.job]
    publishers, _, notebook_uploads = results_and_artifacts(job, sim.root)
    patterns = [p for s in publishers for p in result_patterns(s, sim.root)]
    files = sorted({f for p in patterns for f in p.parent.glob(p.name)})
    assert len(files) == 1, f"{patterns} match {files}"
    suites = list(ET.parse(files[0]).getroot().iter("testsuite"))
    assert sum(int(s.get("tests", "0")) for s in suites) > 0
    assert all(s.get("failures") == "0" and s.get("errors", "0") == "0" for s in suites)
    for step in notebook_uploads:
        folder = Path(step.inputs.get("targetPath") or sim.root / step.inputs["path"])
        assert list(folder.rglob("*.html")), f"{step.name}: nothing to publish in {folder}"


def check_secrets(
    outcome: Outcome,
    secrets: Mapping[str, str],
    config: BuildConfig,
    vaults: Vaults,
    system: System,
) -> None:
    """Vault secrets are read from the target's own vault, and their values appear only in the
    line that tells the CI to mask them."""
    announce = "##vso[task.setsecret]" if system == "azure" else "::add-mask::"
    lines = (outcome.out + outcome.err).splitlines()
    shown = [line for line in lines if not line.startswith(announce)]
    assert not [v for v in secrets.values() if any(v in line for line in shown)], outcome
    credential = config.workspace.client_secret or config.workspace.token
    if credential is not None and credential.source == "keyvault":  # prod
        assert config.key_vault_url in vaults.opened
        assert credential.name in vaults.read()
        assert f"{announce}{secrets[credential.name]}" in lines
