"""Git Credentials API of the local workspace through databricks-sdk: kept, listed, changed and
deleted, and the token never answered nor written anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from databricks.sdk.errors import NotFound
from databricks.sdk.errors.base import DatabricksError

from orchestrator.local.server import LocalWorkspace
from tests.conftest import sdk_client

TOKEN_VALUE = "ghp_notARealTokenButLongEnough0123"


@pytest.fixture
def w(ws: LocalWorkspace):  # type: ignore[no-untyped-def]
    return sdk_client(ws)


def test_create_and_list_never_return_the_token(w, ws: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    created = w.git_credentials.create(
        git_provider="GitHub",
        git_username="ci-bot",
        git_email="ci@example.com",
        personal_access_token=TOKEN_VALUE,
    )
    assert (created.git_provider, created.git_username, created.git_email) == (
        "gitHub",
        "ci-bot",
        "ci@example.com",
    )
    assert created.is_default_for_provider is True  # the first of its provider
    listed = list(w.git_credentials.list())
    assert [(c.credential_id, c.git_provider, c.git_username) for c in listed] == [
        (created.credential_id, "gitHub", "ci-bot")
    ]
    got = w.git_credentials.get(created.credential_id)
    assert (got.credential_id, got.git_username) == (created.credential_id, "ci-bot")
    headers = {"Authorization": f"Bearer {ws.token}"}
    for route in ("git-credentials", f"git-credentials/{created.credential_id}"):
        raw = requests.get(f"{ws.url}/api/2.0/{route}", headers=headers, timeout=10).text
        assert TOKEN_VALUE not in raw and "personal_access_token" not in raw, raw
    assert not any(
        TOKEN_VALUE.encode() in path.read_bytes()
        for path in Path(ws.store.state_dir).rglob("*")
        if path.is_file()
    )


def test_update_and_delete(w) -> None:  # type: ignore[no-untyped-def]
    first = w.git_credentials.create(git_provider="gitHub", git_username="one")
    second = w.git_credentials.create(git_provider="gitHub", git_username="two", name="second")
    assert second.is_default_for_provider is False
    w.git_credentials.update(
        second.credential_id,
        git_provider="gitHub",
        is_default_for_provider=True,
        personal_access_token=TOKEN_VALUE,
    )
    assert w.git_credentials.get(second.credential_id).is_default_for_provider is True
    assert w.git_credentials.get(first.credential_id).is_default_for_provider is False
    assert w.git_credentials.get(second.credential_id).name == "second"  # unchanged
    w.git_credentials.update(
        first.credential_id, git_provider="azureDevOpsServices", git_username="ado"
    )
    moved = w.git_credentials.get(first.credential_id)
    assert (moved.git_provider, moved.git_username) == ("azureDevOpsServices", "ado")
    w.git_credentials.delete(first.credential_id)
    with pytest.raises(NotFound):
        w.git_credentials.get(first.credential_id)
    with pytest.raises(NotFound):
        w.git_credentials.delete(first.credential_id)
    assert [c.credential_id for c in w.git_credentials.list()] == [second.credential_id]


def test_bad_credentials_are_refused(w, ws: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatabricksError, match="Invalid Git provider"):
        w.git_credentials.create(git_provider="sourceforge")
    with pytest.raises(DatabricksError, match="Service principal 7 does not exist"):
        w.git_credentials.create(git_provider="gitHub", principal_id=7)
    answer = requests.post(
        f"{ws.url}/api/2.0/git-credentials",
        data=json.dumps({"git_provider": "gitHub", "personal_access_token": 12}),
        headers={"Authorization": f"Bearer {ws.token}"},
        timeout=10,
    )
    assert (answer.status_code, answer.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert list(w.git_credentials.list()) == []
