"""An HTTP proxy in its own process that adds a fixed latency to every request: it puts Azurite
(the storage emulator) at the same 20 ms per request as the local workspace.

``python -m bench.latency_proxy --upstream-port N --latency-ms 20`` prints
``{"url": "http://127.0.0.1:PORT"}`` when ready. Each client connection keeps one upstream
connection; Nagle is off and each answer is one write (as in the local workspace), so the proxy
adds the latency and little else. ``GET /__proxy/counters`` answers the requests and request
body bytes forwarded so far (``POST /__proxy/reset`` zeroes them): the storage side's own
counters, as the local workspace's are for the API side.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        self.by_method: dict[str, int] = {}

    def add(self, method: str, size: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += size
            self.by_method[method] = self.by_method.get(method, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "bytes": self.bytes, "by_method": self.by_method}

    def reset(self) -> None:
        with self.lock:
            self.requests = self.bytes = 0
            self.by_method = {}


def serve(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_proxy")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    counters = _Counters()
    delay = args.latency_ms / 1000.0

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        upstream: http.client.HTTPConnection | None = None

        def log_message(self, format: str, *a: object) -> None:
            pass

        def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
            lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP]
            lines = [x for x in lines if not x.lower().startswith("content-length:")]
            lines.append(f"Content-Length: {len(data)}")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            self.wfile.write(head + (b"" if self.command == "HEAD" else data))

        def _body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            body = self._body()
            if self.path.startswith("/__proxy/"):
                if self.path == "/__proxy/reset":
                    counters.reset()
                data = json.dumps(counters.snapshot()).encode()
                self._reply(200, [("Content-Type", "application/json")], data)
                return
            counters.add(self.command, len(body))
            time.sleep(delay)
            for attempt in (1, 2):  # a kept upstream connection may have been closed
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(
                        "127.0.0.1", args.upstream_port, timeout=120
                    )
                try:
                    conn = self.upstream
                    conn.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for name, value in self.headers.items():
                        if name.lower() not in _HOP and name.lower() != "content-length":
                            conn.putheader(name, value)
                    conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body or None)
                    response = conn.getresponse()
                    data = response.read()
                    break
                except (OSError, http.client.HTTPException):
                    self.upstream.close()
                    self.upstream = None
                    if attempt == 2:
                        raise
            self._reply(response.status, response.getheaders(), data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}"}), flush=True)
    stop.wait()
    server.shutdown()
    return 0


@dataclass
class LatencyProxy:
    url: str
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, upstream_port: int, *, latency_ms: float) -> LatencyProxy:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.latency_proxy",
                "--upstream-port",
                str(upstream_port),
                "--latency-ms",
                str(latency_ms),
            ],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert process.stdout is not None
        return cls(json.loads(process.stdout.readline())["url"], process)

    def counters(self, *, reset: bool = False) -> dict[str, Any]:
        path = "/__proxy/reset" if reset else "/__proxy/counters"
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
        return result

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    sys.exit(serve())
