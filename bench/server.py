"""A local workspace in its own process, as a remote service is: ``python -m bench.server``.

Clients under test (the orchestrator, the SDK, the legacy CLI) then share no interpreter (no
GIL) with the server. Counters and fault settings are read and changed over HTTP
(``/local-admin/``). A notebook task whose parameters hold ``bench_sleep`` does not start a
kernel: it sleeps that many seconds and succeeds, for runs of an exact duration; every other
task runs its notebook for real.

:class:`Server` starts one and talks to its admin endpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.local.jobs.task_execution import TaskExecutor, TaskOutcome, TaskSpec
    from orchestrator.local.server import LocalWorkspace

TOKEN_ENV = "BENCH_WORKSPACE_TOKEN"


class _Executor:
    """``bench_sleep`` tasks sleep; the rest go to the real notebook executor."""

    def __init__(self) -> None:
        self.real: TaskExecutor | None = None

    def __call__(self, spec: TaskSpec, cancel: threading.Event) -> TaskOutcome:
        from orchestrator.local.jobs.task_execution import TaskOutcome

        seconds = spec.parameters.get("bench_sleep")
        if seconds is None:
            assert self.real is not None
            return self.real(spec, cancel)
        if cancel.wait(float(seconds)):
            return TaskOutcome("CANCELED", "Run cancelled")
        return TaskOutcome("SUCCESS", "", {"notebook_output": {"result": ""}})


def serve(argv: list[str] | None = None) -> int:
    from orchestrator.local.jobs.notebook_tasks import NotebookTaskExecutor
    from orchestrator.local.server import ConnectionLimits, FaultSettings, start_local_workspace

    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--max-workers", type=int, default=8)
    parser.add_argument("--idle-seconds", type=float, help="connections' idle timeout")
    parser.add_argument("--max-connections", type=int, help="connections served at once")
    args = parser.parse_args(argv)
    executor = _Executor()
    limits = ConnectionLimits()
    if args.idle_seconds is not None:
        limits = replace(limits, idle_seconds=args.idle_seconds)
    if args.max_connections is not None:
        limits = replace(limits, max_connections=args.max_connections)
    try:
        ws = start_local_workspace(
            args.state_dir,
            port=args.port,
            token=os.environ[TOKEN_ENV],
            faults=FaultSettings(latency_ms=args.latency_ms),
            max_workers=args.max_workers,
            cluster_start_delay=0.5,
            executor=executor,
            connections=limits,
        )
    except OSError as exc:
        print(json.dumps({"error": f"{exc.strerror or exc}"}), flush=True)
        return 1
    executor.real = NotebookTaskExecutor(ws.store)
    return serve_until_signal(ws)


def serve_until_signal(ws: LocalWorkspace) -> int:
    """Print ``{"url": ...}`` for the parent, serve until SIGINT/SIGTERM, stop; 0."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps({"url": ws.url}), flush=True)
    stop.wait()
    ws.stop()
    return 0


#: connections a benchmark's workspace serves at once. The benchmark keeps every scenario's
#: clients, each holding its pool's connections open between requests (16-20 apiece, idle until
#: the server's 60 s timeout), so the default bound (128) would refuse a later scenario's
#: requests with 503s and measure the bound, not the work.
BENCH_MAX_CONNECTIONS = 1024


@dataclass
class Server:
    """A running ``bench.server`` process."""

    url: str
    token: str
    process: subprocess.Popen[str]

    @classmethod
    def start(
        cls,
        state_dir: Path,
        *,
        token: str,
        port: int = 0,
        latency_ms: float = 20.0,
        max_workers: int = 8,
        env: dict[str, str] | None = None,
        options: tuple[str, ...] = ("--max-connections", str(BENCH_MAX_CONNECTIONS)),
    ) -> Server:
        argv = [
            sys.executable,
            "-m",
            "bench.server",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--latency-ms",
            str(latency_ms),
            "--max-workers",
            str(max_workers),
            *options,
        ]
        env = dict(os.environ, **(env or {}), **{TOKEN_ENV: token})
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        info = json.loads(line) if line.strip() else {"error": "the server exited"}
        if "url" not in info:
            process.wait(10)
            raise OSError(info.get("error", "the bench server did not start"))
        return cls(info["url"], token, process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/local-admin/{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def counters(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "counters")
        return result

    def requests(self, prefix: str = "") -> int:
        """API requests counted so far (those whose endpoint starts with ``prefix``)."""
        counts: dict[str, int] = self.counters()["requests"]
        return sum(
            n
            for key, n in counts.items()
            if not key.split(" ", 1)[-1].startswith("/")  # API routes only, not admin pages
            and key.split(" ", 1)[-1].startswith(prefix)
        )

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "faults")
        return result

    def set_faults(self, settings: dict[str, Any]) -> None:
        self._admin("POST", "faults", settings)


if __name__ == "__main__":
    sys.exit(serve())
