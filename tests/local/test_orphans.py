"""No process outlives a SIGKILLed local workspace: kernels (pooled ones too), their children and
the Spark engine (orchestrator/local/lifetime.py).

A real ``orchestrator local serve`` process runs a Python notebook that starts two ``sleep``
processes (one in a session of its own, out of its kernel's process group) and then a child
notebook (a second kernel) that sleeps, an R notebook that sleeps, and,
with pysail installed, its cluster's Spark engine. Then the server gets SIGKILL:

- with its watchdog alive, every process carrying the workspace's mark ends;
- with the watchdog SIGKILLed first, the kernels the server started still die (parent-death
  signal), what they started does not, and a workspace started on the same state dir ends it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil
import pytest
import requests

from orchestrator.local.runtime.lifetime import (
    owned_processes,
    owner_env,
    reap_leftovers,
    record_process,
)
from orchestrator.local.runtime.spark_engines import engine_available
from orchestrator.local.server import start_local_workspace
from tests.local.runtime_helpers import is_kernel
from tests.waiting import wait_until

TOKEN = "orphan-test-token"
REPO = Path(__file__).resolve().parents[2]
HAS_R = shutil.which("R") is not None
PARENT = """# Databricks notebook source
import pathlib, subprocess
escaped = subprocess.Popen(["sleep", "1000"], start_new_session=True)
plain = subprocess.Popen(["sleep", "1001"])
pathlib.Path(dbutils.widgets.get("out")).write_text(f"{escaped.pid} {plain.pid}")

# COMMAND ----------

dbutils.notebook.run("./child", 900, {"out": dbutils.widgets.get("out") + ".child"})
"""
CHILD = """# Databricks notebook source
import os, pathlib, time
pathlib.Path(dbutils.widgets.get("out")).write_text(str(os.getpid()))
time.sleep(1000)
"""
R_SLEEP = "# Databricks notebook source\nSys.sleep(1000)\n"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdlines(state: Path) -> list[str]:
    lines = []
    for proc in owned_processes(state):
        try:
            lines.append(" ".join(proc.cmdline()))
        except psutil.Error:
            continue
    return lines


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, state: Path) -> None:
        self.process, self.url, self.state = process, url, state

    def call(self, route: str, body: Mapping[str, object]) -> dict[str, object]:
        response = requests.post(
            f"{self.url}/api/{route}",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        response.raise_for_status()
        result: dict[str, object] = response.json()
        return result

    def watchdog(self) -> psutil.Process:
        (found,) = [
            p
            for p in psutil.Process(self.process.pid).children()
            if "orchestrator.local.runtime.watchdog" in " ".join(p.cmdline())
        ]
        return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    state = tmp_path / "state"
    env = {**os.environ, "DATABRICKS_TOKEN": TOKEN}
    command = [sys.executable, "-m", "orchestrator", "local", "serve", "--port", "0"]
    command += ["--state-dir", str(state), "--cluster-start-delay", "0"]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.split()[3]
        assert url.startswith("http://127.0.0.1:"), first
        yield Served(process, url, state)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        reap_leftovers(state)  # whatever a failed test left


def _start_everything(served: Served, out: Path) -> tuple[int, int]:
    """The notebooks running; the pids of the two ``sleep`` processes."""
    served.call("2.0/workspace/mkdirs", {"path": "/t"})
    for name, text, language in (
        ("parent", PARENT, "PYTHON"),
        ("child", CHILD, "PYTHON"),
        ("rsleep", R_SLEEP, "R"),
    ):
        content = base64.b64encode(text.encode()).decode()
        body = {"path": f"/t/{name}", "language": language, "content": content}
        served.call("2.0/workspace/import", body)
    tasks: list[dict[str, object]] = [
        {
            "task_key": "py",
            "existing_cluster_id": "0000-000000-local",
            "notebook_task": {"notebook_path": "/t/parent", "base_parameters": {"out": str(out)}},
        }
    ]
    if HAS_R:
        tasks.append({"task_key": "r", "notebook_task": {"notebook_path": "/t/rsleep"}})
    served.call("2.1/jobs/runs/submit", {"run_name": "orphans", "tasks": tasks})
    assert wait_until(lambda: out.exists() and len(out.read_text().split()) == 2)
    escaped, plain = (int(pid) for pid in out.read_text().split())

    def all_running() -> bool:
        lines = _cmdlines(served.state)
        python_kernels = [
            proc
            for proc in owned_processes(served.state)
            if is_kernel(proc) and "IRkernel" not in " ".join(proc.cmdline())
        ]
        ready = len(python_kernels) >= 2 and out.with_name(out.name + ".child").exists()
        if HAS_R:
            ready = ready and any("IRkernel" in line for line in lines)
        if engine_available():
            ready = ready and any("spark_engine_main" in line for line in lines)
        return ready

    assert wait_until(all_running), _cmdlines(served.state)
    return escaped, plain


def _socket_roots(state: Path) -> set[Path]:
    """The folders holding the kernels' Unix sockets (``<root>/k-<kernel>/k-<channel>``)."""
    roots: set[Path] = set()
    for proc in owned_processes(state):
        try:
            bound = [conn.laddr for conn in proc.net_connections(kind="unix")]
        except psutil.Error:
            continue
        for path in bound:
            if isinstance(path, str) and Path(path).parent.name.startswith("k-"):
                roots.add(Path(path).parent.parent)
    return roots


@pytest.mark.slow
def test_sigkill_of_the_server_leaves_no_process(served: Served, tmp_path: Path) -> None:
    escaped, plain = _start_everything(served, tmp_path / "pids.txt")
    sockets = _socket_roots(served.state)
    assert sockets and all(root.name.startswith("orch-") for root in sockets)
    watchdog = served.watchdog()
    before = _cmdlines(served.state)
    assert len(before) >= 5, before  # kernels, sleeps, (R kernel, engine)
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(10)
    assert wait_until(lambda: owned_processes(served.state) == [], timeout=60), _cmdlines(
        served.state
    )
    assert not _alive(escaped) and not _alive(plain)
    watchdog.wait(30)  # its work done, it exits (not our child: no exit code to read)
    assert not _alive(watchdog.pid)
    assert not any(root.exists() for root in sockets)  # the sockets killed kernels left


@pytest.mark.slow
def test_kernels_die_with_the_server_and_a_restart_ends_the_rest(
    served: Served, tmp_path: Path
) -> None:
    escaped, plain = _start_everything(served, tmp_path / "pids.txt")
    sockets = _socket_roots(served.state)
    server = psutil.Process(served.process.pid)
    # what the server started (kernels, the zygote, the Spark engine) and the kernels the
    # zygote forked
    started = [p for p in server.children() if "watchdog" not in " ".join(p.cmdline())]
    forked = [p for p in server.children(recursive=True) if is_kernel(p) and p not in started]
    kernels = started + forked
    assert any(is_kernel(k) and "IRkernel" not in " ".join(k.cmdline()) for k in kernels)
    watchdog = served.watchdog()
    watchdog.kill()  # what a CI agent killing everything but the kernels would do
    assert wait_until(lambda: not _alive(watchdog.pid))  # a zombie until the server goes
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(10)
    # the kernels the server started get SIGKILL from the OS (R's has no poller of its own)
    assert wait_until(lambda: not any(_alive(k.pid) for k in kernels), timeout=30)
    # what they started is still there: only the restart can end it now
    assert _alive(escaped)
    leftovers = _cmdlines(served.state)
    assert leftovers
    assert all(root.exists() for root in sockets)  # no watchdog removed them
    ws = start_local_workspace(served.state, token=TOKEN, cluster_start_delay=0.0)
    try:
        assert owned_processes(served.state) == [], _cmdlines(served.state)
        assert not _alive(escaped) and not _alive(plain)
        assert not any(root.exists() for root in sockets)
        run = requests.get(
            f"{ws.url}/api/2.1/jobs/runs/list",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ).json()["runs"][0]
        assert run["state"]["life_cycle_state"] == "INTERNAL_ERROR"
    finally:
        ws.stop()


def test_a_restart_ends_recorded_processes_and_spares_reused_pids(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    recorded = subprocess.Popen(["sleep", "1000"])  # no mark in its environment
    reused = subprocess.Popen(["sleep", "1000"])
    try:
        record_process(state, recorded.pid, "kernel")
        record = {"pid": reused.pid, "create_time": 1.0, "what": "kernel"}  # another process's
        (state / "procs" / f"{reused.pid}.json").write_text(json.dumps(record))
        assert reap_leftovers(state) == [recorded.pid]
        recorded.wait(10)  # reaped by the reaper already: no exit status left to read
        assert not _alive(recorded.pid)
        assert reused.poll() is None
        assert list((state / "procs").iterdir()) == []
    finally:
        for proc in (recorded, reused):
            proc.kill()
            proc.wait(10)


def test_a_second_workspace_on_a_served_state_dir_ends_nothing_of_the_first(
    tmp_path: Path,
) -> None:
    """Only the processes of the workspace that is gone end: not those of another workspace
    serving the same state dir (a ``local serve`` beside a build), which holds its lock."""
    state = tmp_path / "state"
    first = start_local_workspace(state, token=TOKEN)
    theirs = subprocess.Popen(["sleep", "1000"], env={**os.environ, **owner_env(state)})
    try:
        second = start_local_workspace(state, token=TOKEN)
        second.stop()
        assert theirs.poll() is None
        first.stop()  # its watchdog ends what carries its mark
        theirs.wait(30)
        assert theirs.returncode == -signal.SIGKILL
    finally:
        if theirs.poll() is None:
            theirs.kill()
            theirs.wait(10)
