"""Fixtures shared by the whole suite: a local workspace and an SDK client talking to it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator.local.server import LocalWorkspace, start_local_workspace

if TYPE_CHECKING:
    from tests.azurite import Azurite

TOKEN = "test-token-not-a-secret"


@pytest.fixture(autouse=True)
def _no_databricks_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's real workspace configuration."""
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "AZURE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg")


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[LocalWorkspace]:
    ws = start_local_workspace(tmp_path / "state", token=TOKEN, cluster_start_delay=0.5)
    try:
        yield ws
    finally:
        ws.stop()


def sdk_client(ws: LocalWorkspace, **config: object):  # type: ignore[no-untyped-def]
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient(host=ws.url, token=ws.token, auth_type="pat", **config)


@pytest.fixture
def client(workspace: LocalWorkspace):  # type: ignore[no-untyped-def]
    return sdk_client(workspace)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the sample project (notebooks, model, config, job template)."""
    from tests.buildkit import make_project

    return make_project(tmp_path)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalWorkspace]:
    """A local workspace that outlives the builds aimed at it (see buildkit.remote_args)."""
    monkeypatch.setenv("ORCH_TEST_TOKEN", TOKEN)
    ws = start_local_workspace(tmp_path / "server", token=TOKEN, cluster_start_delay=0.2)
    try:
        yield ws
    finally:
        ws.stop()


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's Blob service for a test module (tests/azurite.py); fails in CI when missing."""
    from tests.azurite import serve_azurite

    yield from serve_azurite(tmp_path_factory)


@pytest.fixture
def container(azurite: Azurite) -> str:
    """A new, empty container in Azurite."""
    from tests.azurite import new_container

    return new_container(azurite)
