"""``orchestrator local serve`` in a subprocess, for tests that kill and restart a workspace
(the ``serve`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import psutil
from databricks.sdk import WorkspaceClient

from tests.buildkit import in_subprocess
from tests.conftest import TOKEN

__all__ = ["Serve", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """``orchestrator local serve`` in a subprocess on a fixed port and state folder."""

    def __init__(self, state: Path, port: int) -> None:
        self.state, self.port = state, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            in_subprocess(
                "local",
                "serve",
                "--port",
                str(self.port),
                "--state-dir",
                str(self.state),
                "--token-env",
                "ORCH_TEST_TOKEN",
                "--cluster-start-delay",
                "0.2",
            ),
            env={**os.environ, "ORCH_TEST_TOKEN": TOKEN},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        # a restart may log first (e.g. that it ended processes a killed server left behind)
        seen = [self.proc.stdout.readline() for _ in range(1)]
        while not seen[-1].startswith("Local workspace on") and seen[-1] and len(seen) < 20:
            seen.append(self.proc.stdout.readline())
        assert seen[-1].startswith("Local workspace on"), seen

    def kill_hard(self) -> list[psutil.Process]:
        """SIGKILL the server; returns the processes it had started (kernels), still alive."""
        assert self.proc is not None
        children = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return children

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self) -> WorkspaceClient:
        return WorkspaceClient(host=self.url, token=TOKEN, auth_type="pat")
