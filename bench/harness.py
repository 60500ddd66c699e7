"""What every benchmark scenario shares: the context (the local workspace with injected latency,
the legacy CLI, the number of runs), measured rows, statistics, the latency bound and the table.

A :class:`Row` is one tool doing one scenario: its samples (seconds, one per run), the requests
the local workspace counted per run, the lower bound that latency and concurrency allow, the
target and whether it was met. :func:`render_table` prints the rows as one Markdown table.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from bench.legacy import LegacyCli
    from bench.server import Server
    from orchestrator.adapters.databricks import DatabricksWorkspace

LEGACY = "databricks-cli 0.18.0"


@dataclass
class Context:
    """One benchmark session: settings and the shared workspace the legacy CLI can reach."""

    runs: int
    quick: bool
    latency_ms: float
    workspace: Server  # on 127.0.0.1:80 when the legacy CLI is available
    legacy: LegacyCli | None
    legacy_problem: str  # why the legacy CLI is not available ("" when it is)
    scratch: Path
    token: str
    notes: list[str] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)  # more workspaces, stopped at the end

    def start_server(
        self, name: str, *, max_workers: int = 8, env: dict[str, str] | None = None
    ) -> Server:
        """Another workspace process (free port, same latency and token)."""
        from bench.server import Server

        server = Server.start(
            self.scratch / f"workspace-{name}",
            token=self.token,
            latency_ms=self.latency_ms,
            max_workers=max_workers,
            env=env,
        )
        self.servers.append(server)
        return server

    @property
    def rtt(self) -> float:
        return self.latency_ms / 1000.0

    def client(self, server: Server | None = None, **config: Any) -> WorkspaceClient:
        return client_for(server or self.workspace, **config)

    def unthrottled(self, server: Server | None = None) -> contextlib.AbstractContextManager[None]:
        """No injected latency while setting up or tearing down (not measured)."""
        return unthrottled(server or self.workspace)

    def requests(self, prefix: str = "") -> int:
        return self.workspace.requests(prefix)


@contextlib.contextmanager
def unthrottled(server: Server) -> Iterator[None]:
    """No injected latency (nor other faults) on ``server`` meanwhile: set-up and tear-down."""
    before = server.faults()
    server.set_faults({})
    try:
        yield
    finally:
        server.set_faults(before)


def client_for(server: Server, **config: Any) -> WorkspaceClient:
    from databricks.sdk import WorkspaceClient

    client = WorkspaceClient(host=server.url, token=server.token, auth_type="pat", **config)
    return https_pool_for_http(client)


@dataclass
class Row:
    scenario: str
    tool: str
    samples: list[float]  # seconds per run (or the scenario's own unit, see ``unit``)
    requests: list[float] = field(default_factory=list)  # counted by the workspace, per run
    bound: float | None = None  # seconds: the latency bound for this tool's work
    bound_note: str = ""
    target: str = ""
    verdict: str = ""  # "met", "MISSED", or "" when no target applies to the row
    result: str = ""  # the comparison behind the verdict
    unit: str = "s"
    extra: str = ""  # a further figure (e.g. requests per second)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan


def product_workspace(server: Server, *, pool_size: int = 20) -> DatabricksWorkspace:
    """The workspace adapter as ``orchestrator build`` and ``cleanup`` open it
    (``open_workspace``: the lean SDK client, its pool and environment settings), for the
    rows that time the orchestrator; ``client_for`` (a plain ``WorkspaceClient``) sets up."""
    from orchestrator.adapters.databricks import open_workspace

    settings = {"host": server.url, "token": server.token, "auth_type": "pat"}
    return open_workspace(settings, pool_size=pool_size)


def https_pool_for_http(client: WorkspaceClient) -> WorkspaceClient:
    """Give the SDK's http connections the pool it gives https (20 connections).

    databricks-sdk mounts its sized connection pool on ``https://`` only; over plain http (the
    local workspace) requests' default pool of 10 applies, and 16 parallel requests would keep
    opening new connections. A real workspace is https, so the benchmark measures that.
    """
    session = client.api_client._api_client._session
    session.mount("http://", session.adapters["https://"])
    return client


def bound(requests: int, concurrency: int, rtt: float) -> float:
    """The time ``requests`` requests take at ``concurrency`` with ``rtt`` each, at least."""
    return math.ceil(requests / max(1, concurrency)) * rtt


def timed(action: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    """Seconds ``action(*args, **kwargs)`` took."""
    t0 = time.perf_counter()
    action(*args, **kwargs)
    return time.perf_counter() - t0


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "—"
    if unit == "s":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if unit == "MB":
        return f"{value:.0f}"
    return f"{value:.2f}"


def render_table(rows: list[Row]) -> str:
    head = [
        "| scenario | tool | median | min | max | requests/run | latency bound | target | result |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    lines = []
    for r in rows:
        unit = "" if r.unit == "s" else f" {r.unit}"
        if r.samples:
            med = _fmt(r.median, r.unit) + unit
            low = _fmt(min(r.samples), r.unit)
            high = _fmt(max(r.samples), r.unit)
        else:
            med = low = high = "—"
        reqs = f"{statistics.median(r.requests):.0f}" if r.requests else "—"
        if r.extra:
            reqs += f" ({r.extra})"
        bnd = f"{r.bound:.2f} s ({r.bound_note})" if r.bound is not None else r.bound_note or "—"
        verdict = f"**{r.verdict}**" if r.verdict else ""
        result = " ".join(x for x in (verdict, r.result) if x)
        lines.append(
            f"| {r.scenario} | {r.tool} | {med} | {low} | {high} | {reqs} | {bnd} | "
            f"{r.target} | {result} |"
        )
    return "\n".join(head + lines)


def machine() -> dict[str, str]:
    """CPU, memory, Python and OS of this machine, and the date."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{os.cpu_count()} ({model or platform.processor() or 'unknown model'})",
        "ram": ram or "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
    }
