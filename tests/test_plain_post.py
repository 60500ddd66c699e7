"""Workspace deletes try one plain POST first (adapters/databricks/plain_post.py): a success or
a "not found" is one request; anything else, and every call after the workspace pushed back or
did not answer, goes through databricks-sdk, whose retries, reporting and errors are unchanged.
Against the local workspace, whose fault injection answers 429s as the service does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.adapters.databricks import DatabricksWorkspace, open_workspace
from orchestrator.adapters.databricks.retries import RetryBudgetExceeded
from orchestrator.local.server import FaultSettings, LocalWorkspace
from tests.fakes import FakeClock
from tests.test_retries import closed_port

DELETES = "POST workspace/delete"


@pytest.fixture
def ws(workspace: LocalWorkspace) -> Iterator[DatabricksWorkspace]:
    adapter = open_workspace(
        {"host": workspace.url, "token": workspace.token, "auth_type": "pat"}, pool_size=4
    )
    for name in ("a", "b", "c", "d"):
        adapter.mkdirs(f"/builds/{name}/sub")
    workspace.faults.reset_counts()
    yield adapter


def deletes(workspace: LocalWorkspace) -> int:
    return int(workspace.faults.snapshot()["requests"].get(DELETES, 0))


def test_a_delete_is_one_request_and_so_is_one_of_a_folder_already_gone(
    workspace: LocalWorkspace, ws: DatabricksWorkspace
) -> None:
    plain = getattr(ws.client, "plain", None)
    assert plain is not None and plain.enabled

    assert ws.delete("/builds/a") is True
    assert deletes(workspace) == 1
    assert ws.delete("/builds/a") is False  # RESOURCE_DOES_NOT_EXIST, not retried by the SDK
    assert deletes(workspace) == 2
    assert [e.name for e in ws.list("/builds") or []] == ["b", "c", "d"]
    assert plain.enabled


def test_after_a_429_every_delete_goes_through_the_sdk_which_retries_and_says_so(
    workspace: LocalWorkspace, ws: DatabricksWorkspace
) -> None:
    """Two deletes a second, two at once at most: the third delete's plain try is refused,
    the SDK sends it again (refused too), waits the Retry-After second and succeeds; the
    fourth never tries the plain path."""
    workspace.faults.configure(FaultSettings(rate_limits={DELETES: 2.0}))
    said: list[str] = []
    ws.retries.listen(said.append)

    for name in ("a", "b", "c"):
        assert ws.delete(f"/builds/{name}") is True
    plain = getattr(ws.client, "plain", None)
    assert plain is not None and not plain.enabled
    assert workspace.faults.snapshot()["injected"] == {"rate-limit": 2}
    assert deletes(workspace) == 5  # a, b; c plain (429), c by the SDK (429), c again
    assert len(said) == 1
    assert said[0].startswith("retrying deleting /builds/c on ")

    workspace.faults.configure(FaultSettings())
    assert ws.delete("/builds/d") is True
    assert deletes(workspace) == 6
    assert ws.list("/builds") in (None, [])


def test_a_workspace_that_does_not_answer_gets_the_sdks_budget_and_message(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    host = f"http://127.0.0.1:{closed_port()}"
    ws = open_workspace(
        {"host": host, "token": "t0k3n-not-secret", "auth_type": "pat"},
        pool_size=2,
        clock=clock,
        connect=1,
    )
    ws.retries.connect = 60.0
    with pytest.raises(RetryBudgetExceeded) as raised:
        ws.delete("/builds/a")
    assert str(raised.value).startswith(f"workspace {host} did not answer for 60 s ")
    assert "while deleting /builds/a" in str(raised.value)
    plain = getattr(ws.client, "plain", None)
    assert plain is not None and not plain.enabled


def test_no_plain_path_through_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's session would go through the proxy (with whatever it needs): so does every
    call; where NO_PROXY exempts the host, the plain path is there."""
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    host = f"https://127.0.0.1:{closed_port()}"  # nothing is sent: its probe fails in 1 s
    settings = {"host": host, "token": "t0k3n-not-secret", "auth_type": "pat"}

    assert getattr(open_workspace(settings, pool_size=2, connect=1).client, "plain", 0) is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    plain = getattr(open_workspace(settings, pool_size=2, connect=1).client, "plain", None)
    assert plain is not None and plain.host == host


def test_credentials_that_fail_leave_the_call_to_the_sdk(workspace: LocalWorkspace) -> None:
    """An OAuth token that cannot be had is the SDK's to report, with its own message."""
    from orchestrator.adapters.databricks.plain_post import PlainPost

    def no_token() -> dict[str, str]:
        raise ValueError("cannot get a token")

    plain = PlainPost(workspace.url, headers=no_token, user_agent="t", pool_size=1, timeout=5)
    assert plain("/api/2.0/workspace/delete", {"path": "/x", "recursive": True}) is None
    assert not plain.enabled
    assert deletes(workspace) == 0
