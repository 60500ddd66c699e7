"""Upload 50 MB of test data in 200 files: the build's storage upload (content-hashed test data,
``tree_digest`` + ``Storage.upload_immutable`` to ADLS Gen2 through the Blob endpoint,
:mod:`orchestrator.storage.adls`) against ``databricks fs cp -r`` to DBFS (one multipart put per
file).

The two tools write to different services, as they do in real life: ours to the storage account
(Azurite here, behind :mod:`bench.latency_proxy` so each request also costs 20 ms), the legacy
CLI to DBFS on the local workspace. Requests are counted by the proxy and by the workspace.

Targets: at least 5x faster than ``fs cp -r``; a second upload of unchanged data sends no data.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import LEGACY, Context, Row, bound, timed

if TYPE_CHECKING:
    from orchestrator.storage.base import Storage

SCENARIO = "upload 50 MB of test data in 200 files"
SECOND = "upload the same 50 MB again (unchanged)"
FILES = 200
FILE_BYTES = 256 * 1024  # 200 x 256 KiB = 50 MiB
CONTAINER = "bench"


def make_data(root: Path, *, files: int = FILES) -> Path:
    """``files`` files of random (incompressible) bytes in 4 folders, the same every time."""
    src = root / f"upload-src-{files}"
    if src.exists():
        return src
    rng = random.Random(50)
    for i in range(files):
        path = src / f"part_{i % 4}" / f"chunk_{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(FILE_BYTES))
    return src


@contextlib.contextmanager
def storage_service(ctx: Context) -> Iterator[tuple[Any, str] | None]:
    """Azurite behind the latency proxy: (proxy, connection string), or None without Azurite."""
    try:
        from bench.kit.azurite import ACCOUNT, ACCOUNT_KEY, run_azurite
    except ImportError:
        yield None
        return
    from bench.latency_proxy import LatencyProxy

    try:
        azurite_cm = run_azurite(ctx.scratch / "azurite")
        azurite = azurite_cm.__enter__()
    except (FileNotFoundError, RuntimeError) as exc:
        ctx.notes.append(f"upload: Azurite not available ({exc}); storage upload not measured")
        yield None
        return
    proxy = LatencyProxy.start(azurite.port, latency_ms=ctx.latency_ms)
    try:
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={proxy.url}/{ACCOUNT};"
        )
        from azure.storage.blob import BlobServiceClient

        with BlobServiceClient.from_connection_string(connection) as service:
            service.create_container(CONTAINER)
        yield proxy, connection
    finally:
        proxy.stop()
        azurite_cm.__exit__(None, None, None)


def open_adls(connection: str, prefix: str) -> Storage:
    from bench.kit.azurite import ACCOUNT
    from orchestrator.storage.adls import AdlsStorage
    from orchestrator.storage.base import StorageAuth

    return AdlsStorage(
        f"abfss://{CONTAINER}@{ACCOUNT}.dfs.core.windows.net/{prefix}",
        auth=StorageAuth(connection_string=connection),
    )


def upload(storage: Storage, data: Path) -> int:
    """What the build does with its test data."""
    from orchestrator.layout import data_prefix
    from orchestrator.storage.base import tree_digest

    return storage.upload_immutable(data, data_prefix(tree_digest(data)))


def run(ctx: Context) -> list[Row]:
    data = make_data(ctx.scratch)
    rows: list[Row] = []
    with storage_service(ctx) as service:
        first = Row(SCENARIO, "orchestrator (hash + `upload_immutable`, ADLS Blob, 8 parallel)", [])
        again = Row(SECOND, "orchestrator (content hash unchanged)", [])
        sent_again: list[int] = []
        if service is not None:
            proxy, connection = service
            for i in range(ctx.runs):
                storage = open_adls(connection, f"run{i}")
                try:
                    proxy.counters(reset=True)
                    first.samples.append(timed(upload, storage, data))
                    first.requests.append(proxy.counters()["requests"])
                    proxy.counters(reset=True)
                    again.samples.append(timed(upload, storage, data))
                    counted = proxy.counters()
                    again.requests.append(counted["requests"])
                    sent_again.append(int(counted["bytes"]))
                finally:
                    storage.close()
        peer = Row(SCENARIO, f"{LEGACY} `fs cp -r` (DBFS)", [])
        if ctx.legacy is not None:
            client = ctx.client()
            for i in range(ctx.runs):
                before = ctx.requests()
                peer.samples.append(
                    timed(ctx.legacy.run, "fs", "cp", "-r", str(data), f"dbfs:/bench/upload/{i}")
                )
                peer.requests.append(ctx.requests() - before)
                with ctx.unthrottled():
                    client.dbfs.delete(f"/bench/upload/{i}", recursive=True)
    if first.samples:
        n = int(max(first.requests))
        first.bound = bound(n, 8, ctx.rtt)
        first.bound_note = f"ceil({n}/8) x {ctx.latency_ms:.0f} ms"
        first.target = "≥ 5x faster than fs cp -r"
        if peer.samples:
            speedup = peer.median / first.median
            first.verdict = "met" if speedup >= 5 else "MISSED"
            first.result = f"{speedup:.1f}x faster than fs cp -r"
        else:
            first.result = f"peer not run: {ctx.legacy_problem}"
        again.target = "sends no data"
        again.verdict = "met" if max(sent_again) == 0 else "MISSED"
        again.result = f"{max(sent_again)} bytes of request bodies"
        n_again = int(max(again.requests))
        again.bound = bound(n_again, 1, ctx.rtt)
        again.bound_note = f"{n_again} x {ctx.latency_ms:.0f} ms"
        rows += [first, again]
    if peer.samples:
        n = int(max(peer.requests))
        peer.bound = bound(n, 1, ctx.rtt)
        peer.bound_note = f"{n} x {ctx.latency_ms:.0f} ms (sequential)"
        rows.append(peer)
    return rows
