"""``orchestrator cleanup`` of old builds on the local workspace, 20 ms injected per request.

Standalone (issue 5): ``.venv/bin/python -m bench.cleanup [--builds 500] [--skip-default-rate]``
prints one table: 500 builds deleted one at a time (sequential), 8 in flight at the default
rate limit (2 workspace deletes per second, the service's published limit), and 8 and 16 in
flight with no limit. The default-rate row takes ``builds / 2`` seconds by design (about 4
minutes at 500); the others take seconds.

The comparison with the legacy CLI is the ``cleanup`` scenario of ``python -m bench``
(``bench/cleanup_builds.py``).

Every measurement starts from fresh builds, the scenario the two cleanup benchmarks share
(bench/old_builds.py): a workspace folder with a notebook and its ``_build.json`` marker, 30
days old, and a storage prefix with a file and the marker, made with no latency and not timed.
Ours is the library call the CLI makes (discover, plan, journal, delete), timed until every
folder and prefix is gone.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import client_for, product_workspace
from bench.old_builds import REPO_NAME, ROOT, clean_up, make_old_builds
from bench.server import Server

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient


@dataclass(frozen=True)
class Mode:
    name: str
    concurrency: int
    rate: float | None  # workspace deletes per second; None: no limit


def modes(*, default_rate: bool = True) -> list[Mode]:
    from orchestrator.cleanup.model import DEFAULT_CONCURRENCY, DEFAULT_DELETE_RATE

    out = [Mode("sequential (one delete at a time)", 1, None)]
    if default_rate:
        out.append(Mode("default rate limit", DEFAULT_CONCURRENCY, DEFAULT_DELETE_RATE))
    out.append(Mode("no rate limit", DEFAULT_CONCURRENCY, None))
    out.append(Mode("no rate limit", 16, None))
    return out


def _check_clean(client: WorkspaceClient, storage: Path, what: str) -> None:
    left = [o.path for o in client.workspace.list(f"{ROOT}/{REPO_NAME}")]
    if left != [f"{ROOT}/{REPO_NAME}/_orchestrator"] or any((storage / REPO_NAME).iterdir()):
        raise RuntimeError(f"{what}: cleanup incomplete ({len(left) - 1} folders left)")


def ours(
    server: Server, client: WorkspaceClient, storage: Path, mode: Mode, count: int
) -> tuple[float, int, int]:
    """Seconds, API requests and folders deleted: one cleanup of ``count`` fresh builds."""
    make_old_builds(server, storage, count)
    before = server.requests()
    t0 = time.perf_counter()
    workspace = product_workspace(server)
    report = clean_up(
        workspace, storage, expect=count, rate=mode.rate, concurrency=mode.concurrency
    )
    seconds = time.perf_counter() - t0
    requests = server.requests() - before
    _check_clean(client, storage, mode.name)
    return seconds, requests, report.folders_deleted


def bound(mode: Mode, count: int, rtt: float) -> tuple[float, str]:
    """The least time the deletes alone can take: the rate, or the round trips."""
    if mode.rate is not None:  # the bucket starts empty: the first delete waits too
        return count / mode.rate, f"{count} / {mode.rate:g} per s"
    rounds = math.ceil(count / mode.concurrency)
    return rounds * rtt, f"ceil({count}/{mode.concurrency}) x {rtt * 1000:.0f} ms"


# -- python -m bench.cleanup -------------------------------------------------------------------


def table(results: list[tuple[Mode, float, int, int]], count: int, rtt: float) -> str:
    sequential = results[0][1]
    lines = [
        f"| cleanup of {count} builds | in flight | rate limit | time | builds/s | requests "
        "| vs sequential | deletes alone, at least |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for mode, seconds, requests, deleted in results:
        least, note = bound(mode, count, rtt)
        limit = f"{mode.rate:g} deletes/s" if mode.rate else "none"
        lines.append(
            f"| {mode.name} | {mode.concurrency} | {limit} | {seconds:.1f} s | "
            f"{deleted / seconds:.1f} | {requests} | {sequential / seconds:.1f}x | "
            f"{least:.1f} s ({note}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cleanup", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--builds", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--skip-default-rate", action="store_true", help="leave out the row that takes builds/2 s"
    )
    args = parser.parse_args(argv)
    token = "bench-" + secrets.token_hex(8)
    results: list[tuple[Mode, float, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cleanup-") as tmp:
        server = Server.start(Path(tmp) / "workspace", token=token, latency_ms=args.latency_ms)
        try:
            client: Any = client_for(server)
            for mode in modes(default_rate=not args.skip_default_rate):
                print(f"-- {mode.name}, {mode.concurrency} in flight ...", file=sys.stderr)
                measured = ours(server, client, Path(tmp) / "storage", mode, args.builds)
                results.append((mode, *measured))
        finally:
            server.stop()
    print(table(results, args.builds, args.latency_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
