"""Peak memory (RSS) of a build uploading 50 MB of test data: ``orchestrator build`` of the
sample project with 200 more files of 256 KiB in its test data, storing to ADLS Gen2 through
the Blob endpoint (Azurite; a local storage folder when Azurite is not installed).

The figure is the build process's own peak RSS (``ru_maxrss`` of a wrapper's only child): the
notebooks run in the workspace's process tree, as they run on the cluster. Every run uploads
to a new container, so the content-hashed test data is really sent each time.

Target: at most 200 MB.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

from bench.demo import build_argv, build_env
from bench.harness import Context, Row
from bench.kit.sample import copy_sample_project
from bench.upload import make_data

SCENARIO = "peak memory of a build uploading 50 MB"
WRAPPER = (
    "import resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "if done.returncode:\n"
    "    sys.exit(done.stdout[-2000:] + done.stderr[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


@contextlib.contextmanager
def azurite(ctx: Context) -> Iterator[str | None]:
    """A connection string to a fresh Azurite, or None when it is not installed."""
    try:
        from bench.kit.azurite import run_azurite
    except ImportError:
        yield None
        return
    try:
        with run_azurite(ctx.scratch / "azurite-memory") as server:
            yield server.connection_string
    except FileNotFoundError:
        yield None


def run(ctx: Context) -> list[Row]:
    project = copy_sample_project(ctx.scratch / "memory-project")
    data = make_data(ctx.scratch)
    shutil.copytree(data, project / "databricks" / "tests" / "data" / "bulk")
    row = Row(SCENARIO, "orchestrator build", [], unit="MB")
    with azurite(ctx) as connection:
        flags: list[str] = []
        extra: dict[str, str] = {}
        if connection is not None:
            from azure.storage.blob import BlobServiceClient

            from bench.kit.azurite import CONNECTION_ENV, azurite_build_flags, use_abfss_shim

            use_abfss_shim(project)
            extra = {CONNECTION_ENV: connection}
            row.tool = "orchestrator build (ADLS Blob endpoint, Azurite)"
        else:
            row.tool = "orchestrator build (local storage folder: Azurite not installed)"
        server = ctx.start_server("memory", max_workers=4, env=extra)
        for i in range(ctx.runs):
            if connection is not None:
                container = f"memory{i}"
                with BlobServiceClient.from_connection_string(connection) as service:
                    service.create_container(container)
                flags = azurite_build_flags(container)
            argv = build_argv(project, server, f"m{i}", *flags)
            done = subprocess.run(
                [sys.executable, "-c", WRAPPER, *argv],
                cwd=project,
                env=build_env(server, **extra),
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"memory build failed: {done.stderr[-3000:]}")
            row.samples.append(int(done.stdout.strip().splitlines()[-1]) / 1024)
    row.target = "≤ 200 MB RSS"
    row.verdict = "met" if row.median <= 200 else "MISSED"
    row.result = f"{row.median:.0f} MB"
    return [row]
