"""The local workspace's HTTP layer under hostile clients, over raw sockets: framing errors are
400 at once, every error is JSON, the token is checked before the body is read, a foreign
``Host`` is refused, idle and slow connections are closed, connections are bounded, and the
pages answer 404 (never 500) for ids out of range or a job name that is not valid Unicode.

No assertion is timed: a hang shows as the socket's generous timeout expiring."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from orchestrator.local.server import ConnectionLimits, LocalWorkspace, start_local_workspace
from tests.conftest import TOKEN
from tests.fakes import FakeExecutor

#: how long a test waits for an answer that should come at once (a hang fails, never a pass)
PATIENCE = 30.0


def _connect(ws: LocalWorkspace) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", ws.port), timeout=PATIENCE)
    return sock


def _head(method: str, path: str, *headers: str, host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer(sock: socket.socket, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Read one response (head and, by its Content-Length, body: none for a ``head`` one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed without an answer: {data!r}")
        data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    length = 0 if head else int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body[:length]


def _closed(sock: socket.socket) -> bool:
    """True once the server has closed the connection; a server that keeps it open past
    PATIENCE fails the test with the socket's TimeoutError."""
    sock.settimeout(PATIENCE)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def _exchange(ws: LocalWorkspace, request: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    with _connect(ws) as sock:
        sock.sendall(request)
        status, headers, body = _answer(sock)
    return status, headers, json.loads(body)


AUTH = f"Authorization: Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("name", "headers", "after"),
    [
        ("Content-Length abc", ["Content-Length: abc"], b""),
        ("Content-Length -1", ["Content-Length: -1"], b""),
        ("Content-Length +5", ["Content-Length: +5"], b"{}"),
        ("two Content-Lengths", ["Content-Length: 2", "Content-Length: 3"], b"{}"),
        ("Content-Length and chunked", ["Content-Length: 2", "Transfer-Encoding: chunked"], b""),
        ("gzip coding", ["Transfer-Encoding: gzip"], b""),
        ("chunk size zz", ["Transfer-Encoding: chunked"], b"zz\r\n"),
        ("chunk size -1", ["Transfer-Encoding: chunked"], b"-1\r\n"),
        ("chunk longer than said", ["Transfer-Encoding: chunked"], b"1\r\nab\r\n0\r\n\r\n"),
    ],
)
def test_a_framing_error_is_400_at_once_and_closes(
    ws: LocalWorkspace, name: str, headers: list[str], after: bytes
) -> None:
    request = _head("POST", "/api/2.0/workspace/mkdirs", AUTH, *headers) + after
    with _connect(ws) as sock:
        sock.sendall(request)
        status, answer, body = _answer(sock)
        assert status == 400, (name, body)
        assert answer["content-type"] == "application/json"
        assert json.loads(body)["error_code"] == "BAD_REQUEST"
        assert answer.get("connection") == "close"
        assert _closed(sock)


def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(ws: LocalWorkspace) -> None:
    status, _, body = _exchange(
        ws, _head("POST", "/api/2.0/dbfs/put", AUTH, f"Content-Length: {65 * 1024 * 1024}")
    )
    assert (status, body["error_code"]) == (413, "REQUEST_TOO_LARGE")


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "FOO"])
def test_other_methods_answer_json_for_the_api(ws: LocalWorkspace, method: str) -> None:
    with _connect(ws) as sock:
        sock.sendall(_head(method, "/api/2.0/workspace/list?path=/", AUTH))
        status, headers, body = _answer(sock, head=method == "HEAD")
    assert headers["content-type"] == "application/json"
    assert status in (404, 405, 501), status
    if method == "HEAD":
        assert body == b""  # the headers of the answer, without its body
    else:
        assert set(json.loads(body)) == {"error_code", "message"}


def test_a_page_answers_head_like_get_without_a_body(ws: LocalWorkspace) -> None:
    with _connect(ws) as sock:
        sock.sendall(_head("HEAD", "/jobs"))
        status, headers, body = _answer(sock, head=True)
        assert (status, body) == (200, b"")
        assert int(headers["content-length"]) > 0
        sock.sendall(_head("GET", "/jobs"))  # the connection is still in step
        assert _answer(sock)[0] == 200


def test_414_and_431_are_json(ws: LocalWorkspace) -> None:
    status, headers, body = _exchange(ws, _head("GET", "/api/2.0/workspace/list?x=" + "a" * 70_000))
    assert (status, headers["content-type"]) == (414, "application/json"), body
    many = [f"X-Header-{i}: v" for i in range(150)]
    status, headers, body = _exchange(ws, _head("GET", "/api/2.0/workspace/list", *many))
    assert (status, headers["content-type"]) == (431, "application/json"), body
    long_line = "X-Long: " + "v" * 70_000
    status, _, body = _exchange(ws, _head("GET", "/api/2.0/workspace/list", long_line))
    assert status == 431 and set(body) == {"error_code", "message"}


def test_the_token_is_checked_before_the_body_is_read(ws: LocalWorkspace) -> None:
    """A tokenless upload that announces 60 MiB is answered 401 before it sends a byte of it."""
    length = 60 * 1024 * 1024
    for auth in ([], ["Authorization: Bearer wrong"]):
        head = _head("POST", "/api/2.0/dbfs/put", *auth, f"Content-Length: {length}")
        with _connect(ws) as sock:
            sock.sendall(head)  # and nothing more
            status, headers, body = _answer(sock)
            assert (status, json.loads(body)["error_code"]) == (401, "UNAUTHENTICATED")
            assert headers.get("connection") == "close"
            assert _closed(sock)


def test_expect_100_continue_is_granted_only_with_the_token(ws: LocalWorkspace) -> None:
    expect = ["Expect: 100-continue", "Content-Length: 2", "Content-Type: application/json"]
    with _connect(ws) as sock:
        sock.sendall(_head("POST", "/api/2.0/workspace/mkdirs", *expect))
        status, _, _ = _answer(sock)
        assert status == 401  # the final answer, not "100 Continue"
    with _connect(ws) as sock:
        sock.sendall(_head("POST", "/api/2.0/workspace/mkdirs", AUTH, *expect))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"{}")
        status, _, body = _answer(sock)
        assert (status, json.loads(body)["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example", "localhost.", "127.1", ""],
)
def test_a_foreign_host_is_refused_for_pages_and_api(ws: LocalWorkspace, host: str) -> None:
    host = host.format(port=ws.port)
    for path, headers in (("/jobs", []), ("/", []), ("/api/2.0/workspace/list?path=/", [AUTH])):
        status, _, body = _exchange(ws, _head("GET", path, *headers, host=host))
        assert (status, body["error_code"]) == (421, "MISDIRECTED_REQUEST"), (host, path)


def test_a_request_without_host_or_with_two_is_refused(ws: LocalWorkspace) -> None:
    with _connect(ws) as sock:
        sock.sendall(b"GET /jobs HTTP/1.1\r\n\r\n")
        assert _answer(sock)[0] == 421
    status, _, _ = _exchange(ws, _head("GET", "/jobs", "Host: evil.example"))
    assert status == 421


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "127.0.0.1:1"]
)
def test_the_bound_address_and_localhost_are_served(ws: LocalWorkspace, host: str) -> None:
    """Any port: a proxy on this machine forwards its own (tests/faultproxy.py)."""
    host = host.format(port=ws.port)
    with _connect(ws) as sock:
        sock.sendall(_head("GET", "/jobs", host=host))
        assert _answer(sock)[0] == 200
    response = requests.get(
        f"http://localhost:{ws.port}/api/2.0/workspace/list",
        params={"path": "/"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=PATIENCE,
    )
    assert response.status_code == 200


# --- timeouts and the connection bound ------------------------------------------------------


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[LocalWorkspace]:
    """A workspace with short connection limits: 0.5 s idle, 2 s a request, 3 connections."""
    limits = ConnectionLimits(max_connections=3, idle_seconds=0.5, request_seconds=2.0)
    ws = start_local_workspace(
        tmp_path / "state", token=TOKEN, executor=FakeExecutor(), connections=limits
    )
    try:
        yield ws
    finally:
        ws.stop()


def test_an_idle_connection_is_closed(strict: LocalWorkspace) -> None:
    with _connect(strict) as sock:
        assert _closed(sock)  # nothing sent: closed after the idle timeout
    with _connect(strict) as sock:
        sock.sendall(_head("GET", "/jobs"))
        assert _answer(sock)[0] == 200
        assert _closed(sock)  # kept alive, then idle: closed


def test_a_body_that_stalls_is_408_and_nothing_is_written(strict: LocalWorkspace) -> None:
    before = sorted(p.name for p in strict.store.tmp_root.iterdir())
    with _connect(strict) as sock:
        head = _head("POST", "/api/2.0/dbfs/put", AUTH, "Content-Length: 1000000")
        sock.sendall(head + b'{"path": "/x", "contents": "')
        status, headers, body = _answer(sock)
        assert (status, json.loads(body)["error_code"]) == (408, "REQUEST_TIMEOUT")
        assert headers.get("connection") == "close"
        assert _closed(sock)
    assert sorted(p.name for p in strict.store.tmp_root.iterdir()) == before
    assert not (strict.store.dbfs_root / "x").exists()


def test_a_request_trickled_past_its_deadline_is_closed(strict: LocalWorkspace) -> None:
    """A header line every 0.3 s never trips the idle timeout (0.5 s); the request's deadline
    (2 s) closes the connection, silently, long before the 100 header lines that would make
    it a 431."""
    with _connect(strict) as sock:
        sock.sendall(b"GET /jobs HTTP/1.1\r\n")
        sock.settimeout(0.3)
        answer, lines = b"", 0
        while lines < 90:
            try:
                sock.sendall(b"X: y\r\n")
                lines += 1
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
        assert answer == b""  # closed, not answered (431 would be an answer)
        assert lines < 90, lines


def test_connections_over_the_bound_are_refused_politely(tmp_path: Path) -> None:
    limits = ConnectionLimits(max_connections=3, idle_seconds=PATIENCE)
    ws = start_local_workspace(
        tmp_path / "state", token=TOKEN, executor=FakeExecutor(), connections=limits
    )
    held = [_connect(ws) for _ in range(3)]  # the bound: each holds a thread, waiting
    try:
        for _ in range(4):
            with _connect(ws) as extra:
                extra.sendall(_head("GET", "/jobs"))
                status, headers, body = _answer(extra)
                assert status == 503
                assert headers["retry-after"] == "1"
                assert json.loads(body)["error_code"] == "TEMPORARILY_UNAVAILABLE"
                assert _closed(extra)
        for sock in held:
            sock.close()
        for _ in range(100):  # their threads end as they notice: then a newcomer is served
            with _connect(ws) as sock:
                sock.sendall(_head("GET", "/jobs"))
                if _answer(sock)[0] == 200:
                    break
        else:
            pytest.fail("no connection was served once the held ones closed")
    finally:
        for sock in held:
            sock.close()
        ws.stop()


# --- pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/jobs/{2**63}",
        f"/jobs/1/runs/{2**63}",
        f"/runs/{2**64}",
        f"/runs/{'9' * 5000}/notebook",
        f"/jobs/{'1' * 30}/runs/1",
    ],
)
def test_a_page_for_an_id_out_of_range_is_404(ws: LocalWorkspace, path: str) -> None:
    response = requests.get(f"{ws.url}{path}", timeout=PATIENCE)
    assert response.status_code == 404
    assert "Not found" in response.text


def test_pages_survive_a_job_name_with_a_lone_surrogate_an_older_state_kept(
    ws: LocalWorkspace,
) -> None:
    """The API refuses such a name (MALFORMED_REQUEST); a state written before may hold one."""
    ws.store.insert_job(7, 0, "local@localhost", {"name": "build \ud800", "tasks": []})  # type: ignore[typeddict-item]
    for path in ("/", "/jobs", "/jobs/7"):
        response = requests.get(f"{ws.url}{path}", timeout=PATIENCE)
        assert response.status_code == 200, path
        assert "build ?" in response.text
