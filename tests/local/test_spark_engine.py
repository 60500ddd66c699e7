"""The Spark engine's lifecycle: it starts with its cluster, stops with the cluster and the
server, and no engine process survives a killed server once the workspace restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from orchestrator.local.runtime.spark_engines import SparkEngines
from orchestrator.local.runtime.spark_locations import engine_dir
from orchestrator.local.server import ClusterSpec, start_local_workspace
from tests.conftest import TOKEN, sdk_client
from tests.tools import require_spark
from tests.waiting import wait_until

require_spark()

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "0000-000000-local"


def engine_pids(state_dir: Path) -> list[int]:
    """Engine processes (still running, not zombies) that belong to ``state_dir``."""
    pids = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        mine = "engine_main" in cmdline and str(state_dir) in cmdline
        if mine and proc.info["status"] != psutil.STATUS_ZOMBIE:
            pids.append(proc.pid)
    return pids


@pytest.mark.slow
def test_engine_starts_with_the_cluster_and_stops_with_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ws = start_local_workspace(
        state,
        token=TOKEN,
        cluster_start_delay=0.0,
        clusters=(ClusterSpec(state="TERMINATED"),),
    )
    try:
        w = sdk_client(ws)
        assert engine_pids(state) == []
        started = time.monotonic()
        w.clusters.start(CLUSTER).result()
        assert time.monotonic() - started < 5
        assert w.clusters.get(CLUSTER).state.value == "RUNNING"
        endpoint = ws.clusters.engines.endpoint(CLUSTER)  # type: ignore[union-attr]
        assert endpoint is not None and endpoint.host == "127.0.0.1"
        assert engine_pids(state) == [endpoint.pid]
        w.clusters.delete(CLUSTER)
        assert wait_until(lambda: engine_pids(state) == [])
        assert not (engine_dir(state, CLUSTER) / "endpoint.json").exists()
        w.clusters.start(CLUSTER).result()
        assert len(engine_pids(state)) == 1
    finally:
        ws.stop()
    assert engine_pids(state) == []


_SERVER = """
import sys, time
from pathlib import Path
from orchestrator.local.server import ClusterSpec, start_local_workspace
ws = start_local_workspace(Path(sys.argv[1]), cluster_start_delay=0.0,
                           clusters=(ClusterSpec(state="TERMINATED"),))
ws.clusters.start("0000-000000-local")
while ws.clusters.state("0000-000000-local") != "RUNNING":
    time.sleep(0.05)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_no_engine_survives_a_killed_server_and_its_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    server = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_SERVER), str(state)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == b"ready"
        (old,) = engine_pids(state)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        ws = start_local_workspace(state, token=TOKEN, cluster_start_delay=0.0)
        try:
            assert wait_until(lambda: old not in engine_pids(state))
            assert ws.clusters.engines is not None
            assert ws.clusters.engines.start(CLUSTER).pid != old
        finally:
            ws.stop()
        assert engine_pids(state) == []
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)


def test_a_restarted_workspace_kills_an_engine_left_running(tmp_path: Path) -> None:
    """An engine whose parent is still alive (so it does not exit by itself) is reaped by its
    pid file when a workspace starts on the same state dir."""
    state = tmp_path / "state"
    folder = engine_dir(state, CLUSTER)
    folder.mkdir(parents=True)
    endpoint = folder / "endpoint.json"
    module = "orchestrator.local.runtime.spark_engine_main"
    args = ["--endpoint-file", str(endpoint), "--workdir", str(state / "spark" / "warehouse")]
    stray = subprocess.Popen(
        [sys.executable, "-m", module, *args, "--parent-pid", str(os.getpid())], cwd=REPO
    )
    try:
        assert wait_until(endpoint.exists)
        created = psutil.Process(stray.pid).create_time()
        pid_file = folder / "engine.pid"
        pid_file.write_text(json.dumps({"pid": stray.pid, "create_time": created}))
        SparkEngines(state)
        assert stray.wait(10) is not None
        assert not pid_file.exists() and not endpoint.exists()
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait(10)
