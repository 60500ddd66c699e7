"""Uploading test data to ADLS Gen2 (Azurite): time, requests, peak memory, and the second build.

Run: ``.venv/bin/python -m bench.storage_upload`` (Azurite from ``.ci/setup``). It makes 50 MiB of
test data in 200 files (mostly small, a few larger than the 4 MiB block size), starts Azurite on
a free loopback port, and uploads the data the way a build does (``AdlsStorage.upload_immutable``
to ``_data/<sha256>/``), each run in a fresh interpreter so its peak RSS is its own:

1. the first build: every file is sent;
2. a second build with the same data: one listing, nothing sent;
3. the same tree as plain build artifacts (``upload_tree``, overwriting), for comparison;
4. one 50 MiB file: peak memory does not grow with file size (blocks are streamed).

Requests are counted by the client's own per-request hook (every attempt, retries included);
peak RSS is ``resource.getrusage`` of the child, with its value before the upload beside it.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.paths import REPO

MIB = 1024 * 1024
TOTAL = 50 * MIB
FILES = 200


def make_data(root: Path, *, files: int = FILES, total: int = TOTAL, seed: int = 7) -> None:
    """``files`` files adding up to ``total`` bytes: many small ones, a few of several MiB."""
    rng = random.Random(seed)
    weights = [rng.paretovariate(1.2) for _ in range(files)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[0] += total - sum(sizes)
    for i, size in enumerate(sizes):
        path = root / f"part-{i // 50:02d}" / f"file-{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as stream:
            left = size
            while left:
                chunk = min(left, MIB)
                stream.write(rng.randbytes(chunk))
                left -= chunk


def child(mode: str, connection: str, container: str, data: str) -> None:
    """One measured upload in this (fresh) process; prints a JSON result."""
    from orchestrator.layout import data_prefix
    from orchestrator.storage.adls import AdlsStorage
    from orchestrator.storage.base import StorageAuth, tree_digest

    storage = AdlsStorage(
        f"abfss://{container}@devstoreaccount1.dfs.core.windows.net/bench",
        auth=StorageAuth(connection_string=connection),
        concurrency=8,
    )
    folder = Path(data)
    prefix = data_prefix(tree_digest(folder))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if mode == "tree":
        sent = storage.upload_tree(folder, "sample/bench-build")
    else:
        sent = storage.upload_immutable(folder, prefix)
    seconds = time.perf_counter() - started
    storage.close()
    print(
        json.dumps(
            {
                "files_sent": sent,
                "seconds": seconds,
                "requests": storage.stats.requests,
                "by_method": storage.stats.by_method,
                "bytes_sent": storage.stats.bytes_sent,
                "rss_before_kib": before,
                "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def measure(mode: str, connection: str, container: str, data: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.storage_upload",
            "--child",
            mode,
            connection,
            container,
            str(data),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, metavar=("MODE", "CONN", "CONTAINER", "DATA"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    sys.path.insert(0, str(REPO))
    from bench.kit.azurite import azurite_command, create_container, run_azurite

    if azurite_command() is None:
        print("azurite is not installed: run .ci/setup", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        root = Path(tmp)
        make_data(root / "data")
        make_data(root / "one", files=1)
        with run_azurite(root / "azurite") as azurite:
            create_container(azurite, "bench")
            conn = azurite.connection_string
            rows = [
                ("first build: 200 files, 50 MiB", measure("data", conn, "bench", root / "data")),
                ("second build, same data", measure("data", conn, "bench", root / "data")),
                ("as build artifacts (overwrite)", measure("tree", conn, "bench", root / "data")),
                ("first build: 1 file, 50 MiB", measure("data", conn, "bench", root / "one")),
            ]
    print("| upload (Azurite, 8 in parallel, 4 MiB blocks) | files sent | MiB sent | requests "
          "| time | peak RSS (before) |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|")
    for name, r in rows:
        methods = ", ".join(f"{k} {v}" for k, v in sorted(r["by_method"].items()))
        print(
            f"| {name} | {r['files_sent']} | {r['bytes_sent'] / MIB:.1f} | "
            f"{r['requests']} ({methods}) | {r['seconds']:.2f} s | "
            f"{r['rss_peak_kib'] // 1024} MiB ({r['rss_before_kib'] // 1024} MiB) |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
