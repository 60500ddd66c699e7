"""The scenario both cleanup benchmarks measure: old builds, and the library call
``orchestrator cleanup`` makes to delete them. ``python -m bench.cleanup`` (bench/cleanup.py)
compares the cleanup's own modes on it; the ``cleanup`` scenario of ``python -m bench``
(bench/cleanup_builds.py) compares it with the legacy CLI.

A build is what a kept build leaves behind, 30 days old: a workspace folder
``/Shared/builds/<repo>/<build_id>`` holding its ``_build.json`` marker and a notebook, and a
storage prefix ``<repo>/<build_id>`` (a local folder: storage is read first and not throttled)
holding a model file and the same marker. They are made with no latency, untimed.
"""

from __future__ import annotations

import base64
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import client_for, unthrottled

if TYPE_CHECKING:
    from bench.server import Server
    from orchestrator.adapters.databricks import DatabricksWorkspace
    from orchestrator.cleanup.model import CleanupReport

__all__ = ["AGE", "OLDER_THAN", "REPO_NAME", "ROOT", "clean_up", "make_old_builds"]

ROOT = "/Shared/builds"
REPO_NAME = "bench"
AGE = timedelta(days=30)  # of every build made here
OLDER_THAN = timedelta(days=14)  # the cleanup's policy: every build made here is due
NOTEBOOK = base64.b64encode(b"# Databricks notebook source\nprint(1)\n").decode()


def make_old_builds(server: Server, storage: Path, count: int, *, repo: str = REPO_NAME) -> None:
    """``count`` builds of ``repo`` in ``server``'s workspace and in ``storage`` (replacing the
    repo's storage folder), with no latency meanwhile."""
    from databricks.sdk.service.workspace import ImportFormat, Language

    created = (datetime.now(UTC) - AGE).isoformat(timespec="seconds")
    shutil.rmtree(storage / repo, ignore_errors=True)
    with unthrottled(server):
        client = client_for(server)

        def one(i: int) -> None:
            build_id = f"b{i:04d}"
            folder = f"{ROOT}/{repo}/{build_id}"
            marker = json.dumps({"build_id": build_id, "repo": repo, "created": created})
            client.workspace.mkdirs(folder)
            client.workspace.import_(
                f"{folder}/_build.json",
                content=base64.b64encode(marker.encode()).decode(),
                format=ImportFormat.AUTO,
                overwrite=True,
            )
            client.workspace.import_(
                f"{folder}/test_notebook",
                content=NOTEBOOK,
                format=ImportFormat.SOURCE,
                language=Language.PYTHON,
                overwrite=True,
            )
            prefix = storage / repo / build_id
            (prefix / "models").mkdir(parents=True, exist_ok=True)
            (prefix / "models" / "model.rds").write_bytes(b"m" * 4096)
            (prefix / "_build.json").write_text(marker)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(one, range(count)))


def clean_up(
    workspace: DatabricksWorkspace,
    storage: Path,
    *,
    expect: int,
    rate: float | None,
    concurrency: int | None = None,
    repos: tuple[str, ...] = (),
) -> CleanupReport:
    """What ``orchestrator cleanup --older-than 14d [--repo ...]`` does (discover, plan,
    journal, delete) on the workspace as the CLI opens it (``product_workspace``), with
    ``rate`` workspace deletes per second (None: no limit) and ``concurrency`` in flight
    (None: the default); raises unless it deleted ``expect`` builds without an error.
    ``repos`` empty: every repo under the build root."""
    from orchestrator.cleanup.discovery import DEFAULT_READ_BURST, DEFAULT_READ_RATE
    from orchestrator.cleanup.execute import cleanup
    from orchestrator.cleanup.model import DEFAULT_CONCURRENCY, CleanupOptions
    from orchestrator.cleanup.policy import Policy
    from orchestrator.ratelimit import TokenBucket
    from orchestrator.storage.folder import LocalFolderStorage

    # as `orchestrator cleanup` reads: at most DEFAULT_READ_RATE workspace reads a second
    workspace.read_limiter = TokenBucket(DEFAULT_READ_RATE, burst=DEFAULT_READ_BURST)
    report = cleanup(
        tree=workspace,
        storage=LocalFolderStorage(storage),
        runs=workspace,
        root=ROOT,
        storage_root=str(storage),
        options=CleanupOptions(
            policy=Policy(older_than=OLDER_THAN),
            rate=rate,
            repos=repos,
            concurrency=concurrency or DEFAULT_CONCURRENCY,
        ),
    )
    if report.errors or report.folders_deleted != expect:
        raise RuntimeError(f"cleanup deleted {report.folders_deleted} of {expect}: {report.errors}")
    return report
