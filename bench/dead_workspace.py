"""How long a build waits for a workspace that does not answer:
``python -m bench.dead_workspace [--runs 3]``.

The tests check that a build ends with exit 3 and names what is left when its workspace dies
(``tests/test_dead_workspace.py``); this times it, in three scenarios:

* **dead mid-run**: ``orchestrator local serve`` is SIGKILLed (kernels too) while the build's run
  is active and never restarted, ``timeouts.connect=20s``: kill to exit. Target <= 45 s (one
  deadline of 20 s from the last answer, then one try each for the cancel and the clean).
* **SIGTERM while silent**: the same, ``timeouts.connect=600s``, and a SIGTERM once the build
  says it retries: signal to exit. Target <= 5 s.
* **unreachable host** (nothing listens), ``timeouts.connect`` 3, 10 and 20 s: start to the
  first line of output (target <= 1 s) and start to exit (target within 20% of the setting).

Prints the median, min and max of each over the runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from bench.kit.sample import command, copy_sample_project, in_subprocess, workspace_flags

TOKEN = "bench-token-not-a-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def slow(project: Path) -> None:
    notebook = project / "databricks" / "tests" / "run_pytest.py"
    notebook.write_text(
        notebook.read_text().replace(
            "# COMMAND ----------", "# COMMAND ----------\n\nimport time\ntime.sleep(600)\n", 1
        )
    )


class Build:
    """A build in a subprocess, its output lines timed as they come."""

    def __init__(self, argv: list[str]) -> None:
        env = {**os.environ, "ORCH_BENCH_TOKEN": TOKEN, "CI": "true"}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            in_subprocess(*argv),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line))

    def wait_for(self, text: str, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, line in list(self.lines):
                if text in line:
                    return when
            time.sleep(0.02)
        raise RuntimeError(f"no line with {text!r}")

    def finish(self, timeout: float = 900) -> tuple[int, float]:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(10)
        return code, time.monotonic()


class Serve:
    def __init__(self, state: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            in_subprocess(
                "local",
                "serve",
                "--port",
                str(self.port),
                "--state-dir",
                str(state),
                "--token-env",
                "ORCH_BENCH_TOKEN",
            ),
            env={**os.environ, "ORCH_BENCH_TOKEN": TOKEN},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("Local workspace on"):
                break

    def kill(self) -> None:
        children = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def dead_mid_run(scratch: Path, *, sigterm: bool) -> float:
    serve = Serve(scratch / "state")
    project = copy_sample_project(scratch / "project")
    slow(project)
    connect = "600s" if sigterm else "20s"
    flags = workspace_flags(serve.url, "env:ORCH_BENCH_TOKEN")
    build = Build(
        command(
            project, "build", "--build-id", "b1", *flags, "--set", f"timeouts.connect={connect}"
        )
    )
    try:
        build.wait_for("RUNNING")
        serve.kill()
        killed = time.monotonic()
        if sigterm:
            build.wait_for("retrying")
            killed = time.monotonic()
            build.proc.send_signal(signal.SIGTERM)
        code, ended = build.finish()
        if code != (143 if sigterm else 3):
            raise RuntimeError(f"exit {code}: {''.join(line for _, line in build.lines)}")
        return ended - killed
    finally:
        build.proc.kill()


def unreachable(scratch: Path, connect: int) -> tuple[float, float]:
    project = copy_sample_project(scratch / "project")
    flags = workspace_flags(f"http://127.0.0.1:{free_port()}", "env:ORCH_BENCH_TOKEN")
    build = Build(
        command(
            project, "build", "--build-id", "u1", *flags, "--set", f"timeouts.connect={connect}s"
        )
    )
    first = build.wait_for("==> build")
    code, ended = build.finish()
    if code != 3:
        raise RuntimeError(f"exit {code}")
    return first - build.started, ended - build.started


def stats(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f}"


def measure(runs: int, make: Callable[[Path], float]) -> list[float]:
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-dead-") as tmp:
            out.append(make(Path(tmp)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dead_workspace")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    rows = [
        "| scenario | median s | min s | max s | target | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    dead = measure(args.runs, lambda p: dead_mid_run(p, sigterm=False))
    ok = max(dead) <= 45
    rows.append(
        f"| dead mid-run, timeouts.connect 20 s: kill to exit 3 | {stats(dead)} | <= 45 s "
        f"| **{'met' if ok else 'MISSED'}** |"
    )
    term = measure(args.runs, lambda p: dead_mid_run(p, sigterm=True))
    ok = max(term) <= 5
    rows.append(
        f"| silent workspace, SIGTERM to exit 143 | {stats(term)} | <= 5 s "
        f"| **{'met' if ok else 'MISSED'}** |"
    )
    for connect in (3, 10, 20):
        pairs: list[tuple[float, float]] = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="bench-dead-") as tmp:
                pairs.append(unreachable(Path(tmp), connect))
        firsts, exits = [a for a, _ in pairs], [b for _, b in pairs]
        ok = max(firsts) <= 1
        rows.append(
            f"| unreachable host: start to the first line (timeouts.connect {connect} s) "
            f"| {stats(firsts)} | <= 1 s | **{'met' if ok else 'MISSED'}** |"
        )
        ok = all(0.8 * connect <= e <= 1.2 * connect + 1 for e in exits)
        rows.append(
            f"| unreachable host: start to exit 3 (timeouts.connect {connect} s) "
            f"| {stats(exits)} | {0.8 * connect:.1f}-{1.2 * connect:.1f} s (+1 s start-up) "
            f"| **{'met' if ok else 'MISSED'}** |"
        )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
