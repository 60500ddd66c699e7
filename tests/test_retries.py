"""Retries that speak: while databricks-sdk retries (connection refused, 429, 503), the adapter
says what it retries, on which host, for how long so far and the budget; a host that never
answered is given up after ``timeouts.connect`` with one line naming it (exit 3).

Waits go through a :class:`tests.fakes.FakeClock`, so nothing here sleeps for real (except the
SDK's own host probe, bounded to a second) and nothing asserts on wall-clock time.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator.adapters.databricks import open_workspace
from orchestrator.adapters.databricks.retries import RetryBudgetExceeded, RetryReporter
from orchestrator.cli import main
from orchestrator.errors import InfrastructureError
from orchestrator.local.server import FaultSettings, LocalWorkspace
from tests.buildkit import command, remote_args
from tests.fakes import FakeClock

if TYPE_CHECKING:
    from bench.kit.azurite import Azurite

CLUSTER = "0000-000000-local"


def closed_port() -> int:
    """A port on loopback where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_host_that_never_answers_is_given_up_after_timeouts_connect() -> None:
    clock = FakeClock()
    host = f"http://127.0.0.1:{closed_port()}"
    ws = open_workspace(
        {"host": host, "token": "t0k3n-not-secret", "auth_type": "pat"},
        pool_size=2,
        clock=clock,
        connect=1,  # the SDK's own host probe (real time) is bounded by it too
    )
    ws.retries.connect = 60.0  # the budget under test, on the fake clock
    said: list[str] = []
    ws.retries.listen(said.append)
    with pytest.raises(RetryBudgetExceeded) as raised:
        ws.ensure_cluster_running(CLUSTER, timeout=1e9)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"workspace {host} did not answer for 60 s ")
    assert "(timeouts.connect: 60 s) while reading cluster" in message
    assert message.endswith(": cannot connect")
    # said at the first retry, then about every 10 s: never silent for long, never chatty
    assert said[0] == (
        f"retrying reading cluster {CLUSTER} on {host} (cannot connect): 0 s so far, "
        "gives up after 60 s (timeouts.connect)"
    )
    assert 4 <= len(said) <= 7, said
    assert sum(clock.sleeps) == pytest.approx(60)  # the last try is at the deadline


def no_answer(reporter: RetryReporter, seconds: float) -> None:
    """One of the SDK's waits after a request that got no answer (connection refused)."""
    import requests

    try:
        raise requests.ConnectionError("refused")
    except requests.ConnectionError:
        reporter.sleep(seconds)


def test_one_deadline_runs_from_the_last_answer_across_every_request() -> None:
    """No request gets a fresh wait of its own: a workspace that stops answering has
    timeouts.connect from its last answer, across requests, then is gone; every later
    request gets one try."""
    clock = FakeClock()
    start = clock.now
    reporter = RetryReporter("https://adb-1.azuredatabricks.net", clock=clock, connect=20)
    clock.sleep(100)
    reporter.note_answer()  # the last answer, at t=100
    for _ in range(4):  # a first request retried for 12 s
        no_answer(reporter, 3)
    with pytest.raises(RetryBudgetExceeded, match="did not answer for 20 s"):
        while True:  # a second request: 8 s are left, not a fresh 20
            no_answer(reporter, 3)
    assert clock.now - start == pytest.approx(120)
    assert reporter.gone
    with pytest.raises(RetryBudgetExceeded):  # gone: the next request is not retried
        no_answer(reporter, 1)
    assert clock.now - start == pytest.approx(120)
    reporter.note_answer()  # it answers again: a new deadline
    no_answer(reporter, 1)
    assert not reporter.gone and clock.now - start == pytest.approx(121)


def test_after_a_signal_no_request_is_retried_for_long() -> None:
    clock = FakeClock()
    reporter = RetryReporter("https://adb-1.azuredatabricks.net", clock=clock, connect=60)
    start = clock.now
    reporter.hurry()
    with pytest.raises(RetryBudgetExceeded):
        no_answer(reporter, 1)
    assert clock.now == start
    assert reporter.budget == 10  # and 429/503 answers get 10 s at most


@pytest.mark.slow
def test_injected_503s_are_reported_with_the_reason_and_retried_to_success(
    server: LocalWorkspace,
) -> None:
    clock = FakeClock()
    server.faults.configure(FaultSettings(p503=0.6, seed=7))
    ws = open_workspace(
        {"host": server.url, "token": server.token, "auth_type": "pat"},
        pool_size=2,
        clock=clock,
    )
    said: list[str] = []
    ws.retries.listen(said.append)
    for _ in range(5):
        assert ws.ensure_cluster_running(CLUSTER, timeout=1e9) in (True, False)
    assert server.faults.snapshot()["injected"].get("503", 0) > 0
    assert said, "retries were not reported"
    assert f"retrying reading cluster {CLUSTER} on {server.url} (TemporarilyUnavailable" in said[0]
    assert said[0].endswith("gives up after 300 s (retry budget)")  # the host had answered


def test_a_host_that_keeps_answering_503_is_given_up_after_the_retry_budget(
    server: LocalWorkspace,
) -> None:
    clock = FakeClock()
    server.faults.configure(FaultSettings(p503=1.0))
    ws = open_workspace(
        {"host": server.url, "token": server.token, "auth_type": "pat"},
        pool_size=2,
        clock=clock,
    )
    with pytest.raises(InfrastructureError) as raised:
        ws.ensure_cluster_running(CLUSTER, timeout=1e9)
    assert str(raised.value).startswith(f"workspace {server.url} still failing after ")
    assert "(retry budget: 300 s)" in str(raised.value)


def test_the_report_interval_is_shared_by_all_threads() -> None:
    clock = FakeClock()
    reporter = RetryReporter("https://adb-1.azuredatabricks.net", clock=clock, interval=10)
    said: list[str] = []
    reporter.listen(said.append)
    for _ in range(3):
        try:
            raise ConnectionRefusedError("refused")
        except ConnectionRefusedError:
            reporter.sleep(2)
    assert len(said) == 1  # 0 s, 2 s, 4 s: one line
    clock.sleep(10)
    try:
        raise ConnectionRefusedError("refused")
    except ConnectionRefusedError:
        reporter.sleep(2)
    assert len(said) == 2


def test_a_build_against_a_closed_port_says_so_and_exits_3_naming_the_host(
    project: Path, server: LocalWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    args = [*remote_args(server), "--set", f"workspace.host={host}"]
    code = main(
        command(project, "build", "--build-id", "r1", *args, "--set", "timeouts.connect=3s")
    )
    out, err = capsys.readouterr()
    assert code == 3
    # the first request a build makes: who it runs as (its build root is that user's home)
    said = f"    retrying reading the current user (SCIM Me) on {host} (cannot connect): "
    assert said in out and "gives up after 3 s (timeouts.connect)" in out
    assert out.startswith(f"==> build r1 of sample on {host}\n")  # said before any request
    errors = [line for line in err.splitlines() if line.startswith("orchestrator: error:")]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"orchestrator: error: workspace {host} did not answer for 3 s")


# -- storage -----------------------------------------------------------------------------------


class _Request:
    method = "PUT"
    url = "https://acct.blob.core.windows.net/c/r/b/a.txt?sig=not-shown"


class _Response:
    status_code = 503


class _History:
    http_request = _Request()
    http_response = _Response()
    error = None


def test_storage_retries_are_said_without_the_query_and_calmly() -> None:
    from orchestrator.storage.blob_client import RetryNotices

    now = [0.0]
    said: list[str] = []
    notices = RetryNotices(5, interval=10, now=lambda: now[0], say=said.append)
    settings = {"count": 1, "history": [_History()]}
    notices(settings, 3.2)
    now[0] = 4.0
    notices({**settings, "count": 2}, 5.0)  # within the interval: quiet
    now[0] = 14.5
    notices({**settings, "count": 3}, 9.0)
    assert said == [
        "retrying storage PUT https://acct.blob.core.windows.net/c/r/b/a.txt (HTTP 503): "
        "retry 1 of 5, next in 3 s",
        "retrying storage PUT https://acct.blob.core.windows.net/c/r/b/a.txt (HTTP 503): "
        "retry 3 of 5, next in 9 s",
    ]


@pytest.mark.slow
def test_storage_503s_through_the_sdk_retry_policy_are_reported(
    azurite: Azurite, container: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from orchestrator.storage.blob_client import RetrySettings
    from tests.faultproxy import fault_proxy
    from tests.test_adls import proxied

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("hello\n")

    def plan(method: str, path: str, n: int) -> str | None:
        return "503" if method == "PUT" and n < 3 else None

    retry = RetrySettings(total=4, initial_backoff=0, increment_base=0, jitter=0)
    with (
        caplog.at_level("WARNING", logger="orchestrator.storage"),
        fault_proxy(azurite.port, plan) as proxy,
    ):
        storage = proxied(azurite, container, proxy.port, retry=retry)
        try:
            assert storage.upload_tree(tmp_path / "src", "r/b") == 1
        finally:
            storage.close()
    lines = [r.getMessage() for r in caplog.records if "retrying storage" in r.getMessage()]
    assert lines and lines[0].startswith("retrying storage PUT http://127.0.0.1:")
    assert "(HTTP 503): retry 1 of 4" in lines[0]
