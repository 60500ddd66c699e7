"""Engine processes: one Sail Spark Connect server per local cluster, started and stopped with it.

:class:`SparkEngine` owns one engine process (``python -m
orchestrator.local.runtime.spark_engine_main`` in its own session, logging to ``engine.log``):
:meth:`~SparkEngine.start` waits until the engine wrote its ``endpoint.json``,
:meth:`~SparkEngine.stop` ends it (SIGTERM, then SIGKILL). :class:`SparkEngines` keeps one per
cluster id and, when created, kills any engine that a previous local workspace on the same state dir
left running (its ``engine.pid`` names it; the engine also exits by itself once its parent is gone).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.local.runtime.lifetime import owner_env
from orchestrator.local.runtime.spark_locations import (
    CATALOGS,
    DEFAULT_CATALOG,
    DEFAULT_SCHEMA,
    INSTALL_HINT,
    engine_dir,
    spark_root,
    warehouse_dir,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "EngineEndpoint",
    "SparkEngine",
    "SparkEngineError",
    "SparkEngines",
    "engine_available",
    "sail_environment",
]

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
_MODULE = "orchestrator.local.runtime.spark_engine_main"


class SparkEngineError(RuntimeError):
    """The engine could not be started."""


@dataclass(frozen=True)
class EngineEndpoint:
    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"sc://{self.host}:{self.port}"


def engine_available() -> bool:
    """Whether the engine (``pysail``) is installed."""
    return importlib.util.find_spec("pysail") is not None


def engine_label() -> str | None:
    """The engine's name and version (``Sail 0.7.2``), None when it is not installed."""
    from importlib import metadata

    try:
        return f"Sail {metadata.version('pysail')}"
    except metadata.PackageNotFoundError:
        return None


def sail_environment() -> dict[str, str]:
    """Catalogs as on a Unity Catalog workspace: ``main`` (the default) and ``hive_metastore``."""
    catalogs = ", ".join(
        f'{{name="{name}", type="memory", initial_database=["{DEFAULT_SCHEMA}"]}}'
        for name in CATALOGS
    )
    return {
        "SAIL_MODE": "local",
        "SAIL_CATALOG__LIST": f"[{catalogs}]",
        "SAIL_CATALOG__DEFAULT_CATALOG": DEFAULT_CATALOG,
        "SAIL_CATALOG__DEFAULT_DATABASE": f'["{DEFAULT_SCHEMA}"]',
        "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
    }


class SparkEngine:
    """The engine process of one cluster. Not thread-safe: :class:`SparkEngines` locks."""

    def __init__(self, state_dir: Path, cluster_id: str) -> None:
        self.cluster_id = cluster_id
        self.state_dir = state_dir
        self.dir = engine_dir(state_dir, cluster_id)
        self.endpoint_file = self.dir / "endpoint.json"
        self.pid_file = self.dir / "engine.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self.endpoint: EngineEndpoint | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> EngineEndpoint:
        """Start the engine and wait until it listens; idempotent while it runs."""
        if self.running and self.endpoint is not None:
            return self.endpoint
        if not engine_available():
            raise SparkEngineError(f"the Spark engine is not installed: {INSTALL_HINT}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.endpoint_file.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            _MODULE,
            "--endpoint-file",
            str(self.endpoint_file),
            "--workdir",
            str(warehouse_dir(self.state_dir)),
            "--parent-pid",
            str(os.getpid()),
        ]
        env = {**os.environ, **sail_environment(), **owner_env(self.state_dir)}
        with (self.dir / "engine.log").open("ab") as log_file:
            self._process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _write_pid_file(self.pid_file, self._process.pid)
        self.endpoint = self._wait_endpoint(timeout)
        log.info("Spark engine of cluster %s listening on %s", self.cluster_id, self.endpoint.url)
        return self.endpoint

    def _wait_endpoint(self, timeout: float) -> EngineEndpoint:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SparkEngineError(
                    f"the Spark engine exited with code {self._process.returncode}; "
                    f"see {self.dir / 'engine.log'}"
                )
            with contextlib.suppress(OSError, ValueError, KeyError):
                data = json.loads(self.endpoint_file.read_text(encoding="utf-8"))
                if int(data["pid"]) == self._process.pid:
                    return EngineEndpoint(str(data["host"]), int(data["port"]), int(data["pid"]))
            time.sleep(0.02)
        self.stop()
        raise SparkEngineError(f"the Spark engine did not start within {timeout:g} s")

    def signal_stop(self) -> None:
        """Ask the engine to end (SIGTERM) and return at once: it ends while its workspace
        stops the rest (with its sessions, Sail takes 0.1-0.2 s). :meth:`stop` then waits."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def stop(self) -> None:
        """End the engine (SIGTERM, SIGKILL after 5 s) and forget its endpoint. Idempotent."""
        process, self._process, self.endpoint = self._process, None, None
        if process is not None and process.poll() is None:
            process.terminate()  # again, if signal_stop sent one: the handler only sets an event
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.endpoint_file.unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)


def _write_pid_file(path: Path, pid: int) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        created = psutil.Process(pid).create_time()
        path.write_text(json.dumps({"pid": pid, "create_time": created}), encoding="utf-8")


def reap_stale_engines(state_dir: Path) -> list[int]:
    """Kill engines a previous workspace on ``state_dir`` left running; their pids."""
    import psutil

    killed: list[int] = []
    for pid_file in (spark_root(state_dir) / "engines").glob("*/engine.pid"):
        with contextlib.suppress(OSError, ValueError, KeyError, psutil.Error):
            data = json.loads(pid_file.read_text(encoding="utf-8"))
            proc = psutil.Process(int(data["pid"]))
            same = abs(proc.create_time() - float(data["create_time"])) < 0.01
            if same and _MODULE in " ".join(proc.cmdline()):
                proc.kill()
                proc.wait(timeout=5)
                killed.append(proc.pid)
        pid_file.unlink(missing_ok=True)
        (pid_file.parent / "endpoint.json").unlink(missing_ok=True)
    return killed


class SparkEngines:
    """One :class:`SparkEngine` per cluster id, for the Clusters API of one workspace."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._engines: dict[str, SparkEngine] = {}
        for pid in reap_stale_engines(state_dir):
            log.warning("killed Spark engine %s left by a previous local workspace", pid)

    @property
    def available(self) -> bool:
        return engine_available()

    def start(self, cluster_id: str) -> EngineEndpoint:
        """Start the cluster's engine (if not running) and return its endpoint."""
        with self._lock:
            engine = self._engines.get(cluster_id)
            if engine is None:
                engine = self._engines[cluster_id] = SparkEngine(self.state_dir, cluster_id)
            return engine.start()

    def start_in_background(self, cluster_id: str) -> None:
        """Start the cluster's engine in a thread, unless it runs; failures are logged."""

        def run() -> None:
            try:
                self.start(cluster_id)
            except SparkEngineError as exc:
                log.warning("cluster %s has no Spark engine: %s", cluster_id, exc)

        with self._lock:
            engine = self._engines.get(cluster_id)
            if engine is not None and engine.running:
                return
        threading.Thread(target=run, name=f"spark-engine-{cluster_id}", daemon=True).start()

    def endpoint(self, cluster_id: str) -> EngineEndpoint | None:
        with self._lock:
            engine = self._engines.get(cluster_id)
            return engine.endpoint if engine is not None and engine.running else None

    def stop(self, cluster_id: str) -> None:
        with self._lock:
            engine = self._engines.pop(cluster_id, None)
        if engine is not None:
            engine.stop()

    def signal_stop_all(self) -> None:
        """SIGTERM to every engine, without waiting (:meth:`stop_all` waits)."""
        with self._lock:
            engines = list(self._engines.values())
        for engine in engines:
            engine.signal_stop()

    def stop_all(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.signal_stop()  # all end at once
        for engine in engines:
            engine.stop()
