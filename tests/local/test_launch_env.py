"""A notebook kernel does not inherit the credentials of whoever started the local workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.local.runtime.launch import kernel_env
from orchestrator.local.runtime.model import ExecutionRequest, NotebookSource


def test_credentials_in_the_environment_do_not_reach_the_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "DATABRICKS_TOKEN",
        "ARM_CLIENT_SECRET",
        "MY_SERVICE_PASSWORD",
        "GITHUB_TOKEN",
        "AZURE_STORAGE_CONNECTION_STRING",
        "ORCHESTRATOR_HOST",
    ):
        monkeypatch.setenv(name, "value-that-must-not-leak")
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    request = ExecutionRequest(
        notebook=NotebookSource("/nb", tmp_path / "nb", "PYTHON"),
        parameters={},
        workspace_root=tmp_path,
        dbfs_root=tmp_path,
        scratch_dir=tmp_path,
        state_db=tmp_path / "state.db",
    )
    env = kernel_env(request, control_dir=tmp_path / "c", pip_target=tmp_path / "p")
    assert "value-that-must-not-leak" not in env.values()
    assert env["HARMLESS_SETTING"] == "kept"
    assert env["ORCH_NOTEBOOK_PATH"] == "/nb"
