"""Hostile clients against the local workspace: its memory and threads, and whether it frees them.

Run: ``.venv/bin/python -m bench.hostile_clients [--idle-seconds 60] [--uploads 4] [--mib 60]``

The workspace runs in a process of its own (``bench.server``, no injected latency), whose
resident memory (RSS) and threads are read with psutil after each step:

1. baseline, after a few ordinary requests;
2. ``--uploads`` clients without a token, each announcing a 64 MiB body and sending
   ``--mib`` MiB of it, then stalling: the server answers 401 after the headers and closes, so
   it never holds what they send; then after they close;
3. the same with the token: the server reads what they send (an authorized upload is kept in
   memory until it is whole), then the connections go idle and the server closes them after
   its idle timeout; then after they have been closed (memory back near the baseline);
4. 100 idle connections: threads while they are open, then after the idle timeout;
5. ``max_connections`` + 50 connections at once: how many were refused with 503.

``--idle-seconds`` shortens the idle timeout for a quick run (the default is the workspace's own,
60 s, so a full run takes about two and a half minutes). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import select
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from bench.server import Server
from orchestrator.local.server import ConnectionLimits

MIB = 1024 * 1024
ANNOUNCED = 64 * MIB
PIECE = 256 * 1024
IDLE_CONNECTIONS = 100  # under the bound: each has a thread until the idle timeout


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def _head(port: int, token: str | None, length: int) -> bytes:
    lines = [
        "POST /api/2.0/dbfs/put HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _upload(sock: socket.socket, head: bytes, size: int, sent: list[int]) -> None:
    """Send the head and ``size`` bytes of body (as far as the server lets), then stop."""
    piece = b'{"path": "/x", "contents": "' + b"A" * (PIECE - 29)
    total = 0
    with contextlib.suppress(OSError):
        sock.sendall(head)
        while total < size:
            sock.sendall(piece[: min(PIECE, size - total)])
            total += min(PIECE, size - total)
    sent.append(total)


def _wait_closed(sock: socket.socket, limit: float) -> float | None:
    """Seconds until the server closes ``sock`` (reading and dropping what it answers)."""
    start = time.monotonic()
    sock.settimeout(1.0)
    while time.monotonic() - start < limit:
        try:
            if not sock.recv(65536):
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


class Probe:
    """The server process's RSS and threads, settled (read until two readings agree)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)

    def rss_mib(self) -> float:
        last = -1.0
        for _ in range(20):
            now = self.process.memory_info().rss / MIB
            if abs(now - last) < 1.0:
                return now
            last = now
            time.sleep(0.25)
        return last

    def threads(self) -> int:
        return self.process.num_threads()


def _until(check: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    token = "bench-" + secrets.token_hex(8)
    limits = ConnectionLimits()
    idle = args.idle_seconds if args.idle_seconds is not None else limits.idle_seconds
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="orchestrator-hostile-") as tmp:
        server = Server.start(
            Path(tmp) / "state", token=token, latency_ms=0.0, options=("--idle-seconds", str(idle))
        )
        try:
            port = int(urlsplit(server.url).port or 0)
            probe = Probe(server.process.pid)
            for _ in range(5):
                server.counters()  # imports and first requests: the baseline is a used server
            base = probe.rss_mib()
            base_threads = probe.threads()
            rows.append(("baseline", f"{base:.0f} MiB", f"{base_threads} threads"))
            size = args.mib * MIB

            # 2. tokenless uploads
            sockets = [_connect(port) for _ in range(args.uploads)]
            sent: list[int] = []
            senders = [
                threading.Thread(target=_upload, args=(s, _head(port, None, ANNOUNCED), size, sent))
                for s in sockets
            ]
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join(120)
            stalled = probe.rss_mib()
            rows.append(
                (
                    f"{args.uploads} tokenless {args.mib} MiB uploads, stalled",
                    f"{stalled:.0f} MiB ({stalled - base:+.0f})",
                    "answered 401 after the headers, body never read; each client got at most "
                    f"{max(sent) / MIB:.1f} MiB into the socket before the server closed it",
                )
            )
            for sock in sockets:
                sock.close()
            after = probe.rss_mib()
            rows.append(("... after they close", f"{after:.0f} MiB ({after - base:+.0f})", ""))

            # 3. authorized uploads that stall, closed by the server's idle timeout
            sockets = [_connect(port) for _ in range(args.uploads)]
            sent = []
            senders = [
                threading.Thread(
                    target=_upload, args=(s, _head(port, token, ANNOUNCED), size, sent)
                )
                for s in sockets
            ]
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join(120)
            holding = probe.rss_mib()
            rows.append(
                (
                    f"{args.uploads} uploads with the token, {args.mib} MiB sent, stalled",
                    f"{holding:.0f} MiB ({holding - base:+.0f})",
                    f"{probe.threads()} threads; the server reads an authorized body into memory",
                )
            )
            closed = [_wait_closed(s, idle * 3 + 30) for s in sockets]
            for sock in sockets:
                sock.close()
            released = probe.rss_mib()
            waited = max((c for c in closed if c is not None), default=float("nan"))
            rows.append(
                (
                    "... after the server closed them (idle timeout)",
                    f"{released:.0f} MiB ({released - base:+.0f})",
                    f"{sum(c is not None for c in closed)}/{len(closed)} closed by the server, "
                    f"after {waited:.1f} s (timeout {idle:g} s); answered 408",
                )
            )

            # 4. idle connections
            idle_socks = [_connect(port) for _ in range(IDLE_CONNECTIONS)]
            _until(lambda: probe.threads() >= base_threads + IDLE_CONNECTIONS, 30)
            open_threads = probe.threads()
            start = time.monotonic()
            ended = _until(lambda: probe.threads() <= base_threads + 2, idle * 3 + 30)
            seconds = time.monotonic() - start
            eof = sum(_wait_closed(s, 5) is not None for s in idle_socks)
            for sock in idle_socks:
                sock.close()
            rows.append(
                (
                    f"{IDLE_CONNECTIONS} idle connections",
                    f"{probe.rss_mib():.0f} MiB",
                    f"{open_threads} threads while open; {probe.threads()} after "
                    f"{seconds:.0f} s ({'all' if ended else 'not all'} closed, "
                    f"{eof}/{IDLE_CONNECTIONS} saw the server close)",
                )
            )

            # 5. the bound
            extra = limits.max_connections + 50
            crowd = [_connect(port) for _ in range(extra)]
            # a connection the server has not accepted yet may look open to the client (the
            # accept queue was full): its answer comes when it is accepted, so wait a while
            refused, waiting, deadline = 0, list(crowd), time.monotonic() + 10
            while waiting and time.monotonic() < deadline:
                readable, _, _ = select.select(waiting, [], [], 0.5)
                for sock in readable:
                    waiting.remove(sock)
                    with contextlib.suppress(OSError):
                        if sock.recv(64).startswith(b"HTTP/1.1 503"):
                            refused += 1
            for sock in crowd:
                sock.close()
            rows.append(
                (
                    f"{extra} connections at once (bound {limits.max_connections})",
                    f"{probe.rss_mib():.0f} MiB",
                    f"{refused} refused with 503 and Retry-After, without a thread",
                )
            )
        finally:
            server.stop()
    return rows


def render(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| step | server RSS | notes |", "|---|---|---|"]
    lines += [f"| {step} | {rss} | {notes} |" for step, rss, notes in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_clients")
    parser.add_argument("--idle-seconds", type=float, help="the server's idle timeout")
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--mib", type=int, default=60, help="MiB each upload sends (< 64)")
    args = parser.parse_args(argv)
    print(render(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
