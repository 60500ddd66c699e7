"""No secret value in anything a build writes: builds run with known secrets (the workspace
token from Key Vault or the environment, the storage connection string and the account key in
it) and a test notebook that deliberately prints them and fails with them in its message. Then
stdout, stderr, the log records, test-results/, artifacts/ and the GitHub step summary are
scanned. The only lines allowed to hold a value are the CI registrations themselves
(``::add-mask::`` / ``##vso[task.setsecret]``), which the CI agent consumes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.kit.azurite import ACCOUNT_KEY, Azurite, azurite_build_flags, use_abfss_shim
from orchestrator.adapters import keyvault as secrets_module
from orchestrator.adapters.keyvault import KeyVaultSecrets
from orchestrator.cli import main
from orchestrator.local.server import LocalWorkspace, start_local_workspace
from orchestrator.masking import MASK
from tests.buildkit import command, in_subprocess, workspace_flags
from tests.kvserver import FakeCredential, client_options, key_vault

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

LEAKY_TEST = """

def test_that_leaks_secrets():
    import os

    token = os.environ["ORCH_LEAK_VALUE"]
    connection = os.environ["ORCH_TEST_AZURITE"]
    print(f"token={token} connection={connection}")
    assert token == connection, f"token {token} is not {connection}"
"""


@pytest.fixture
def workspace_token() -> str:
    return f"dapi{uuid.uuid4().hex}"


@pytest.fixture
def workspace(tmp_path: Path, workspace_token: str) -> Iterator[LocalWorkspace]:
    ws = start_local_workspace(tmp_path / "ws", token=workspace_token, cluster_start_delay=0.2)
    try:
        yield ws
    finally:
        ws.stop()


def leaky_project(project: Path) -> Path:
    use_abfss_shim(project)
    tests = project / "databricks" / "tests" / "pytest" / "test_features.py"
    tests.write_text(tests.read_text() + LEAKY_TEST)
    shim = project / "databricks" / "tests" / "abfss_shim.py"  # the notebook the task exports
    leak = 'print("shim sees", os.environ["ORCH_LEAK_VALUE"])\nscratch = '
    shim.write_text(shim.read_text().replace("scratch = ", leak, 1))
    return project


def written_files(*folders: Path) -> dict[str, str]:
    return {
        str(p): p.read_text(encoding="utf-8", errors="replace")
        for folder in folders
        if folder.exists()
        for p in folder.rglob("*")
        if p.is_file()
    }


def assert_no_leak(texts: dict[str, str], values: list[str], *, registration: str) -> None:
    for where, text in texts.items():
        for line in text.splitlines():
            for value in values:
                if value in line:  # only in a registration line (a value may contain another)
                    assert line.startswith(registration), f"{value[:8]}... leaked in {where}"


def test_in_process_build_with_vault_and_env_secrets_leaks_nothing(
    project: Path,
    workspace: LocalWorkspace,
    workspace_token: str,
    azurite: Azurite,
    container: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    leaky_project(project)
    summary = tmp_path / "step-summary.md"
    for name, value in {
        "ORCH_TEST_AZURITE": azurite.connection_string,
        # printed by the notebook; a credential-like name would not reach the kernel at all
        "ORCH_LEAK_VALUE": workspace_token,
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_REPOSITORY": "org/sample",
        "GITHUB_STEP_SUMMARY": str(summary),
    }.items():
        monkeypatch.setenv(name, value)
    with key_vault(tmp_path / "kv", {"db-token": workspace_token}) as vault:
        monkeypatch.setattr(
            secrets_module,
            "keyvault_for",
            lambda config: KeyVaultSecrets(
                vault.url,
                credential=FakeCredential(),  # type: ignore[arg-type]
                **client_options(vault),
            ),
        )
        caplog.set_level(logging.DEBUG)
        code = main(
            [
                "-v",
                *command(
                    project,
                    "build",
                    "--build-id",
                    "leak1",
                    *workspace_flags(workspace.url, "keyvault:db-token"),
                    "--set",
                    f"key_vault_url={vault.url}",
                    *azurite_build_flags(container),
                ),
            ]
        )
    out, err = capsys.readouterr()
    assert code == 1, out + err  # the leaky test fails, and says why, masked
    values = [workspace_token, azurite.connection_string, ACCOUNT_KEY]
    files = written_files(project / "test-results", project / "artifacts", summary)
    logs = "\n".join(logging.Formatter().format(r) for r in caplog.records)
    assert_no_leak(
        {"stdout": out, "stderr": err, "logs": logs, **files}, values, registration="::add-mask::"
    )
    assert f"::add-mask::{workspace_token}" in out.splitlines()
    junit = (project / "test-results" / "TEST-sample-leak1.xml").read_text()
    assert "test_that_leaks_secrets" in junit and f"token {MASK} is not {MASK}" in junit
    assert f"shim sees {MASK}" in (project / "artifacts" / "leak1" / "run_pytest.html").read_text()
    assert summary.exists() and "test_that_leaks_secrets" in summary.read_text()


def test_a_ci_build_in_a_subprocess_leaks_nothing_to_its_output(
    project: Path,
    workspace: LocalWorkspace,
    workspace_token: str,
    azurite: Azurite,
    container: str,
) -> None:
    leaky_project(project)
    env = {
        **os.environ,
        "ORCH_TEST_AZURITE": azurite.connection_string,
        "ORCH_LEAK_VALUE": workspace_token,
        "TF_BUILD": "True",
        "BUILD_BUILDID": "4243",
        "BUILD_REPOSITORY_NAME": "sample",
        "CI": "true",
    }
    proc = subprocess.run(
        in_subprocess(
            "-v",
            *command(
                project,
                "build",
                "--build-id",
                "leak2",
                *workspace_flags(workspace.url, "env:ORCH_LEAK_VALUE"),
                *azurite_build_flags(container),
            ),
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    values = [workspace_token, azurite.connection_string, ACCOUNT_KEY]
    files = written_files(project / "test-results", project / "artifacts")
    assert_no_leak(
        {"stdout": proc.stdout, "stderr": proc.stderr, **files},
        values,
        registration="##vso[task.setsecret]",
    )
    registered = [line for line in proc.stdout.splitlines() if "task.setsecret" in line]
    assert f"##vso[task.setsecret]{workspace_token}" in registered
    assert f"##vso[task.setsecret]{ACCOUNT_KEY}" in registered
    assert "DEBUG" in proc.stderr  # -v: the SDKs' debug logs were there to be scanned
