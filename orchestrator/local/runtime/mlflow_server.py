"""The MLflow tracking server behind the local workspace's ``/api/2.0/mlflow`` routes.

A real workspace hosts MLflow itself; here it is MLflow's own server (``mlflow server``, the
``mlflow`` extra) in a process of its own, started on the first MLflow request and never
before: importing MLflow's server costs 8-9 s of CPU (fastapi, sqlalchemy, alembic, the
protos), which a build that logs nothing must not pay, and which would slow every request of
the workspace were it loaded in the workspace's process. Its state is in the workspace's state
dir: ``mlflow/mlflow.db`` (SQLite, runs, experiments and the registry) and ``mlflow/server.log``;
artifacts never pass through it (``--no-serve-artifacts``: the workspace serves them itself,
``api/mlflow_api.py``), so it is told an artifact root of Databricks' form,
``dbfs:/databricks/mlflow-tracking``, and hands runs the artifact URIs a real workspace gives.

Its lifetime follows the Spark engines': a session of its own (a signal to the workspace's
process group does not reach it), the workspace's mark in its environment (the watchdog ends
it if the workspace dies), a record in ``procs/`` (a workspace restarting on the state dir
ends it), and SIGTERM, then the process-tree kill, when the workspace stops.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.local.runtime.launch import tool_env
from orchestrator.local.runtime.lifetime import (
    end_processes,
    forget_process,
    owner_env,
    record_process,
)

if TYPE_CHECKING:
    import psutil

__all__ = [
    "ARTIFACT_ROOT",
    "INSTALL_HINT",
    "PREFIX",
    "MlflowServer",
    "MlflowServerError",
    "mlflow_available",
]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'orchestrator[mlflow]'"
#: the artifact root of a Databricks workspace's experiments (the MLflow client reads every
#: ``dbfs:/databricks/mlflow-tracking/...`` URI as the workspace's access-controlled store)
ARTIFACT_ROOT = "dbfs:/databricks/mlflow-tracking"
#: the path of every route of the server, the UI's and the API's (``--static-prefix``): the
#: workspace serves MLflow's UI at ``/mlflow/`` (``ui/mlflow_ui.py``)
PREFIX = "/mlflow"
#: a loaded machine was measured at 50-90 s for a first start (2 cores, load 12); idle, ~10 s
START_TIMEOUT = 180.0


class MlflowServerError(RuntimeError):
    """The tracking server is not installed or could not be started."""


def mlflow_available() -> bool:
    """Whether the ``mlflow`` package (the extra) is installed."""
    return importlib.util.find_spec("mlflow") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(proc: psutil.Process) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class MlflowServer:
    """One tracking server for one workspace, started by the first :meth:`endpoint` call."""

    def __init__(self, state_dir: Path, *, start_timeout: float = START_TIMEOUT) -> None:
        self.state_dir = state_dir
        self.dir = state_dir / "mlflow"
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._stopped = False
        #: seconds the last start took (the benchmark reads it)
        self.start_seconds: float | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def endpoint(self) -> tuple[str, int]:
        """``(host, port)`` of the running server, started now if it is not (blocks until it
        answers ``/health``)."""
        with self._lock:
            if self._stopped:
                raise MlflowServerError("the local workspace is stopping")
            if not self.running:
                self._start()
            return "127.0.0.1", self._port

    def _start(self) -> None:
        if not mlflow_available():
            raise MlflowServerError(f"MLflow is not installed here: {INSTALL_HINT}")
        self.dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        port = _free_port()
        database = self.dir / "mlflow.db"
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{database}",
            "--default-artifact-root",
            ARTIFACT_ROOT,
            "--no-serve-artifacts",
            # every route under /mlflow, where the workspace shows MLflow's UI (the API too)
            "--static-prefix",
            PREFIX,
        ]
        env = {
            k: v for k, v in tool_env().items() if not k.startswith("MLFLOW_") or k == "MLFLOW_HOME"
        }
        # the server's background job runner (huey workers for GenAI jobs): nothing here uses it
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.update(owner_env(self.state_dir))
        with (self.dir / "server.log").open("ab") as log_file:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        record_process(self.state_dir, process.pid, "mlflow server")
        self._process, self._port = process, port
        try:
            self._wait_healthy(process, port)
        except BaseException:
            self._end(process)
            raise
        self.start_seconds = time.monotonic() - began
        log.info("MLflow tracking server on 127.0.0.1:%d (%.1f s)", port, self.start_seconds)

    def _wait_healthy(self, process: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise MlflowServerError(
                    f"the MLflow tracking server exited with code {process.returncode}; "
                    f"see {self.dir / 'server.log'}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    connection.request("GET", f"{PREFIX}/health")
                    if connection.getresponse().status == 200:
                        return
                finally:
                    connection.close()
            time.sleep(0.1)
        raise MlflowServerError(
            f"the MLflow tracking server did not start within {self.start_timeout:g} s"
        )

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM to its session (the CLI and the uvicorn process it starts), then the
        process-tree kill of whatever is left after 5 s."""
        import psutil

        tree: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(process.pid)
            tree = [root, *root.children(recursive=True)]
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        left = [p for p in tree if _alive(p)]
        if left:
            end_processes(left, process_group=process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        forget_process(self.state_dir, process.pid)

    def stop(self) -> None:
        """End the server, if it was started; no later request starts it. Idempotent."""
        with self._lock:
            self._stopped = True
            process, self._process = self._process, None
        if process is not None:
            self._end(process)
