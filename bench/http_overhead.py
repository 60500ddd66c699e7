"""Loopback overhead of the local workspace: latency per request with N concurrent clients.

Run: ``.venv/bin/python -m bench.http_overhead [--clients 16] [--requests 4000]``

Each client is a thread with its own keep-alive connection (``http.client``, the lightest
client, so the figure is the server's cost rather than a client library's) calling
``GET /api/2.0/workspace/get-status``. Prints a table of median, p90 and p99 latency and the
throughput; the target is a median under 2 ms at 16 clients.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.local.server import start_local_workspace


def _client(
    host: str, port: int, token: str, count: int, out: list[float], start: threading.Barrier
) -> None:
    conn = http.client.HTTPConnection(host, port)
    headers = {"Authorization": f"Bearer {token}"}
    start.wait()
    for _ in range(count):
        t0 = time.perf_counter()
        conn.request("GET", "/api/2.0/workspace/get-status?path=/", headers=headers)
        resp = conn.getresponse()
        resp.read()
        out.append(time.perf_counter() - t0)
        assert resp.status == 200
    conn.close()


def _load(url: str, token: str, clients: int, requests: int) -> tuple[list[float], float]:
    """Runs in a separate process, so client work does not share the server's interpreter."""
    split = urlsplit(url)
    per_client = max(1, requests // clients)
    results: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    threads = [
        threading.Thread(
            target=_client,
            args=(split.hostname, split.port, token, per_client, results[i], barrier),
        )
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return [x for r in results for x in r], time.perf_counter() - t0


def measure(clients: int, requests: int) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_local_workspace(Path(tmp)) as ws,
        ProcessPoolExecutor(1) as pool,
    ):
        latencies, elapsed = pool.submit(_load, ws.url, ws.token, clients, requests).result()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients,
        "requests": len(latencies),
        "median_ms": statistics.median(latencies) * 1000,
        "p90_ms": q[89] * 1000,
        "p99_ms": q[98] * 1000,
        "req_per_s": len(latencies) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    print("| clients | requests | median ms | p90 ms | p99 ms | req/s | median < 2 ms at 16 |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for clients in args.clients:
        r = measure(clients, args.requests)
        verdict = ("met" if r["median_ms"] < 2 else "MISSED") if clients == 16 else ""
        print(
            f"| {clients} | {int(r['requests'])} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['req_per_s']:.0f} | {verdict} |"
        )


if __name__ == "__main__":
    main()
