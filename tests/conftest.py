"""Fixtures shared by the whole suite: local workspaces (with real kernels, ``workspace`` and
``server``; with a fake task executor, ``ws``), SDK clients, the sample project and Azurite.

Tools a test needs and CI installs are checked by tests/tools.py: in CI (``CI=true``, which
.ci/run exports) a missing one fails the session before any test runs.

Tiers: ``pytest -m fast`` runs the tests that start no real kernel, Azurite or browser (the
markers are given here, by the fixtures and helpers a test uses, and by a module's
``pytestmark``); the README's test command runs them all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from tests.fakes import FakeExecutor
from tests.tiers import AUDIT_VARIABLE, ProcessWatch, audit
from tests.tools import in_ci, missing_tools, require

if TYPE_CHECKING:
    from bench.kit.azurite import Azurite
    from tests.serving import Serve

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
    """Azurite's Blob service for a test module (bench/kit/azurite.py); fails in CI when missing."""
    from bench.kit.azurite import azurite_command, run_azurite

    require(None if azurite_command() is not None else "Azurite is not installed")
    with run_azurite(tmp_path_factory.mktemp("azurite")) as started:
        yield started


@pytest.fixture
def container(azurite: Azurite) -> str:
    """A new, empty container in Azurite."""
    from bench.kit.azurite import new_container

    return new_container(azurite)


@pytest.fixture
def fake() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
def ws(
    request: pytest.FixtureRequest, tmp_path: Path, fake: FakeExecutor
) -> Iterator[LocalWorkspace]:
    """A local workspace whose tasks run on :class:`~tests.fakes.FakeExecutor` (no kernel);
    ``@pytest.mark.ws(cluster_start_delay=..., max_workers=...)`` sets its options."""
    marker = request.node.get_closest_marker("ws")
    options: dict[str, Any] = {"cluster_start_delay": 0.0, "max_workers": 4}
    options.update(marker.kwargs if marker else {})
    w = start_local_workspace(tmp_path / "state", token=TOKEN, executor=fake, **options)
    try:
        yield w
    finally:
        w.stop()


# -- tiers ---------------------------------------------------------------------------------------

#: fixtures that start real kernels, Azurite or a browser: a test using one is not fast
_SLOW_FIXTURES = frozenset({"runtime", "azurite", "container", "browser"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ws(**options): options of the `ws` fixture's workspace")
    config.addinivalue_line(
        "markers",
        "slow: starts real kernels, Azurite or a browser (the fast tier is `-m fast`)",
    )
    config.addinivalue_line("markers", "fast: starts no real kernel, Azurite or browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("slow") is None and uses & _SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.fast)


_WATCH: list[ProcessWatch] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI every tool .ci/setup installs must be here: a missing one fails at once. The fast
    tier (or an audit) watches what each test starts."""
    if in_ci():
        missing = missing_tools()
        if missing:
            pytest.exit("CI=true but " + "; ".join(missing) + " (run .ci/setup)", returncode=1)
    markexpr = str(session.config.getoption("markexpr", "") or "")
    if "fast" in markexpr or os.environ.get(AUDIT_VARIABLE):
        _WATCH.append(ProcessWatch())


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _WATCH:
        _WATCH.pop().close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    if _WATCH:
        _WATCH[0].take()  # what an earlier test started and left is not this one's
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    if _WATCH and call.when == "teardown":
        started = _WATCH[0].take()
        audit(item.nodeid, started)
        if started and item.get_closest_marker("fast") is not None and report.passed:
            report.outcome = "failed"
            report.longrepr = (
                f"a fast test started {', '.join(sorted(started))}: mark it slow (tests/tiers.py)"
            )
    return report


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``orchestrator local serve`` in a subprocess, on a fixed port and state folder."""
    from tests.serving import Serve, free_port

    server: Serve = Serve(tmp_path / "serve-state", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class _PoolOverflow(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "Connection pool is full" in record.getMessage():
            self.seen.append(record.getMessage())


@pytest.fixture(autouse=True)
def no_connection_pool_overflow() -> Iterator[None]:
    """No build (nor any client) in the suite overflows an HTTP connection pool: every pool is
    at least as large as the threads that use it, so connections are reused, not discarded."""
    handler = _PoolOverflow()
    logger = logging.getLogger("urllib3.connectionpool")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not handler.seen, handler.seen[0]
