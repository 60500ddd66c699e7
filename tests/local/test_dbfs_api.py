"""DBFS API 2.0 of the local workspace, through databricks-sdk and raw HTTP (as the legacy CLI)."""

from __future__ import annotations

import base64
import io
import json
import os
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import requests
from databricks.sdk.errors import NotFound, ResourceAlreadyExists
from databricks.sdk.errors.base import DatabricksError
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.filepost import encode_multipart_formdata

from orchestrator.local.api.dbfs_api import DbfsApi, parse_form
from orchestrator.local.api.routing import Request
from orchestrator.local.server import LocalWorkspace
from orchestrator.local.state.api_error import ApiError
from orchestrator.local.state.store import Store

MB = 1024 * 1024


def call(ws: LocalWorkspace, method: str, route: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {ws.token}", **kwargs.pop("headers", {})}
    return requests.request(
        method, f"{ws.url}/api/2.0/dbfs/{route}", headers=headers, timeout=10, **kwargs
    )


def error_code(resp: requests.Response) -> str:
    body = resp.json()
    assert set(body) == {"error_code", "message"}
    return str(body["error_code"])


def test_sdk_upload_and_download_a_multi_block_file(client, workspace: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(2 * MB + 12345)  # three add-block calls of at most 1 MB
    client.dbfs.upload("/data/big.bin", io.BytesIO(data))
    assert client.dbfs.download("/data/big.bin").read() == data
    # the same folder notebooks see as dbfs:/ and /dbfs
    assert (workspace.store.dbfs_root / "data" / "big.bin").read_bytes() == data
    status = client.dbfs.get_status("/data/big.bin")
    assert (status.path, status.is_dir, status.file_size) == ("/data/big.bin", False, len(data))
    assert status.modification_time and status.modification_time > 0
    counts = workspace.faults.snapshot()["requests"]
    assert counts["POST dbfs/add-block"] == 3
    assert counts["POST dbfs/create"] == 1 and counts["POST dbfs/close"] == 1


def test_upload_without_overwrite_refuses_an_existing_file(client) -> None:  # type: ignore[no-untyped-def]
    client.dbfs.upload("/a.txt", io.BytesIO(b"one"))
    with pytest.raises(ResourceAlreadyExists):
        client.dbfs.upload("/a.txt", io.BytesIO(b"two"))
    client.dbfs.upload("/a.txt", io.BytesIO(b"two"), overwrite=True)
    assert client.dbfs.download("/a.txt").read() == b"two"


def test_inline_put_up_to_one_megabyte(client) -> None:  # type: ignore[no-untyped-def]
    client.dbfs.put("/in/line.bin", contents=base64.b64encode(b"x" * MB).decode())
    assert client.dbfs.get_status("/in/line.bin").file_size == MB
    with pytest.raises(DatabricksError) as raised:
        client.dbfs.put("/in/big.bin", contents=base64.b64encode(b"x" * (MB + 1)).decode())
    assert raised.value.error_code == "MAX_BLOCK_SIZE_EXCEEDED"
    assert not client.dbfs.exists("/in/big.bin")
    with pytest.raises(ResourceAlreadyExists):
        client.dbfs.put("/in/line.bin", contents=base64.b64encode(b"y").decode())
    client.dbfs.put("/in/line.bin", contents=base64.b64encode(b"y").decode(), overwrite=True)
    assert client.dbfs.download("/in/line.bin").read() == b"y"


def test_multipart_put_as_the_legacy_cli_sends_it(workspace: LocalWorkspace) -> None:
    data = os.urandom(3 * MB)  # multipart has no 1 MB limit
    resp = call(
        workspace,
        "POST",
        "put",
        data={"path": "/legacy/file.bin", "overwrite": True},
        files={"file": ("file.bin", io.BytesIO(data), "multipart/form-data")},
    )
    assert resp.status_code == 200, resp.text
    assert (workspace.store.dbfs_root / "legacy" / "file.bin").read_bytes() == data
    again = call(
        workspace,
        "POST",
        "put",
        data={"path": "/legacy/file.bin", "overwrite": False},
        files={"file": ("file.bin", io.BytesIO(b"new"), "multipart/form-data")},
    )
    assert again.status_code == 400 and error_code(again) == "RESOURCE_ALREADY_EXISTS"


def test_text_json_bodies_are_accepted(workspace: LocalWorkspace) -> None:
    # the legacy databricks-cli sends Content-Type: text/json
    body = json.dumps({"path": "/t/x", "contents": base64.b64encode(b"hi").decode()})
    resp = call(workspace, "POST", "put", data=body, headers={"Content-Type": "text/json"})
    assert resp.status_code == 200, resp.text
    read = call(workspace, "GET", "read", params={"path": "/t/x"})
    assert read.json() == {"bytes_read": 2, "data": base64.b64encode(b"hi").decode()}


def test_add_block_limits_and_unknown_handles(workspace: LocalWorkspace) -> None:
    handle = call(workspace, "POST", "create", json={"path": "/blocks.bin"}).json()["handle"]
    too_big = base64.b64encode(b"x" * (MB + 1)).decode()
    resp = call(workspace, "POST", "add-block", json={"handle": handle, "data": too_big})
    assert resp.status_code == 400 and error_code(resp) == "MAX_BLOCK_SIZE_EXCEEDED"
    ok = base64.b64encode(b"x" * MB).decode()
    assert call(workspace, "POST", "add-block", json={"handle": handle, "data": ok}).ok
    # nothing is visible until close
    status = call(workspace, "GET", "get-status", params={"path": "/blocks.bin"})
    assert status.status_code == 404 and error_code(status) == "RESOURCE_DOES_NOT_EXIST"
    assert call(workspace, "POST", "close", json={"handle": handle}).ok
    assert (
        call(workspace, "GET", "get-status", params={"path": "/blocks.bin"}).json()["file_size"]
        == MB
    )
    for route, body in (("add-block", {"handle": handle, "data": ok}), ("close", {"handle": 999})):
        gone = call(workspace, "POST", route, json=body)
        assert gone.status_code == 404 and error_code(gone) == "RESOURCE_DOES_NOT_EXIST"


def test_create_refuses_an_existing_path_without_overwrite(workspace: LocalWorkspace) -> None:
    assert call(workspace, "POST", "mkdirs", json={"path": "/dir"}).ok
    for path in ("/dir",):
        resp = call(workspace, "POST", "create", json={"path": path, "overwrite": True})
        assert resp.status_code == 400 and error_code(resp) == "RESOURCE_ALREADY_EXISTS"


def _request(method: str, route: str, body: dict[str, Any]) -> Request:
    return Request(
        method, f"/api/2.0/{route}", "2.0", route, {}, Message(), json.dumps(body).encode()
    )


def test_idle_handles_expire(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        api = DbfsApi(store, handle_idle_seconds=0.0)
        handle = api.create(_request("POST", "dbfs/create", {"path": "/x"}))["handle"]
        with pytest.raises(ApiError) as raised:
            api.close(_request("POST", "dbfs/close", {"handle": handle}))
        assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert list(store.tmp_root.iterdir()) == []  # the partial upload is gone
    finally:
        store.close()


def test_read_offsets_lengths_and_limits(workspace: LocalWorkspace, client) -> None:  # type: ignore[no-untyped-def]
    data = bytes(range(256)) * 10
    client.dbfs.upload("/r.bin", io.BytesIO(data))
    part = client.dbfs.read("/r.bin", offset=100, length=50)
    assert part.bytes_read == 50 and base64.b64decode(part.data) == data[100:150]
    tail = client.dbfs.read("/r.bin", offset=len(data) - 10, length=1000)
    assert tail.bytes_read == 10
    end = call(workspace, "GET", "read", params={"path": "/r.bin", "offset": len(data)})
    assert end.json() == {"bytes_read": 0, "data": ""}
    for params, code in (
        ({"path": "/r.bin", "length": MB + 1}, "MAX_READ_SIZE_EXCEEDED"),
        ({"path": "/r.bin", "offset": -1}, "INVALID_PARAMETER_VALUE"),
        ({"path": "/r.bin", "length": -1}, "INVALID_PARAMETER_VALUE"),
        ({"path": "/"}, "INVALID_PARAMETER_VALUE"),
        ({"path": "/missing"}, "RESOURCE_DOES_NOT_EXIST"),
    ):
        resp = call(workspace, "GET", "read", params=params)
        assert error_code(resp) == code, params
    default = call(workspace, "GET", "read", params={"path": "/r.bin"}).json()
    assert default["bytes_read"] == len(data)  # under the 0.5 MB default length


def test_list_mkdirs_and_get_status(client, workspace: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    client.dbfs.mkdirs("/p/q/r")
    client.dbfs.upload("/p/f.txt", io.BytesIO(b"abc"))
    listed = {(f.path, f.is_dir, f.file_size) for f in client.dbfs.list("/p")}
    assert listed == {("/p/q", True, 0), ("/p/f.txt", False, 3)}
    deep = {f.path for f in client.dbfs.list("/p", recursive=True)}
    assert deep == {"/p/f.txt"}  # the SDK yields files only when recursive
    assert list(client.dbfs.list("/p/q/r")) == []
    assert call(workspace, "GET", "list", params={"path": "/p/q/r"}).json() == {}
    assert [f.path for f in client.dbfs.list("/p/f.txt")] == ["/p/f.txt"]
    assert client.dbfs.get_status("/").is_dir
    assert client.dbfs.get_status("dbfs:/p/q").is_dir
    with pytest.raises(NotFound):
        list(client.dbfs.list("/nothing"))
    with pytest.raises(NotFound):
        client.dbfs.get_status("/p/f.txt/below")
    clash = call(workspace, "POST", "mkdirs", json={"path": "/p/f.txt/sub"})
    assert clash.status_code == 400 and error_code(clash) == "RESOURCE_ALREADY_EXISTS"
    client.dbfs.mkdirs("/p/q")  # existing folders are fine


def test_put_creates_parent_folders_but_not_through_a_file(workspace: LocalWorkspace) -> None:
    body = {"path": "/x/y/z.txt", "contents": base64.b64encode(b"z").decode()}
    assert call(workspace, "POST", "put", json=body).ok
    assert (workspace.store.dbfs_root / "x" / "y" / "z.txt").read_bytes() == b"z"
    body = {"path": "/x/y/z.txt/w", "contents": ""}
    resp = call(workspace, "POST", "put", json=body)
    assert resp.status_code == 400 and error_code(resp) == "RESOURCE_ALREADY_EXISTS"


def test_delete_files_and_folders(client, workspace: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    client.dbfs.upload("/d/sub/f.txt", io.BytesIO(b"1"))
    client.dbfs.upload("/d/g.txt", io.BytesIO(b"2"))
    client.dbfs.delete("/d/g.txt")
    assert not client.dbfs.exists("/d/g.txt")
    resp = call(workspace, "POST", "delete", json={"path": "/d"})
    assert resp.status_code == 400 and error_code(resp) == "IO_ERROR"
    assert client.dbfs.exists("/d/sub/f.txt")
    client.dbfs.delete("/d", recursive=True)
    assert not client.dbfs.exists("/d")
    assert not (workspace.store.dbfs_root / "d").exists()
    assert call(workspace, "POST", "delete", json={"path": "/never"}).json() == {}
    client.dbfs.mkdirs("/empty")
    assert call(workspace, "POST", "delete", json={"path": "/empty"}).ok
    root = call(workspace, "POST", "delete", json={"path": "/", "recursive": True})
    assert error_code(root) == "INVALID_PARAMETER_VALUE"
    assert list(workspace.store.tmp_root.iterdir()) == []


def test_move_files_and_folders(client, workspace: LocalWorkspace) -> None:  # type: ignore[no-untyped-def]
    client.dbfs.upload("/m/a/f.txt", io.BytesIO(b"f"))
    client.dbfs.move("/m/a/f.txt", "/m/b/g.txt")
    assert client.dbfs.download("/m/b/g.txt").read() == b"f"
    client.dbfs.move("/m/b", "/n/c")
    assert client.dbfs.download("/n/c/g.txt").read() == b"f"
    client.dbfs.upload("/m/h.txt", io.BytesIO(b"h"))
    with pytest.raises(ResourceAlreadyExists):
        client.dbfs.move("/m/h.txt", "/n/c/g.txt")
    with pytest.raises(NotFound):
        client.dbfs.move("/m/missing", "/m/other")
    inside = call(
        workspace, "POST", "move", json={"source_path": "/n", "destination_path": "/n/c/d"}
    )
    assert error_code(inside) == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("path", ["relative/x", "/a/../b", "/a/./b", "/a\nb", ""])
def test_invalid_paths_are_refused(workspace: LocalWorkspace, path: str) -> None:
    resp = call(workspace, "GET", "get-status", params={"path": path})
    assert resp.status_code == 400 and error_code(resp) == "INVALID_PARAMETER_VALUE"


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2000), path=st.text(min_size=1, max_size=30))
def test_multipart_parts_are_kept_byte_for_byte(data: bytes, path: str) -> None:
    body, ctype = encode_multipart_formdata(
        {"path": path, "file": ("f.bin", data + b"\r\n--x\r\n", "multipart/form-data")}
    )
    form = parse_form(ctype, body)
    assert form["file"] == data + b"\r\n--x\r\n"
    assert form["path"].decode() == path


def test_a_multipart_body_without_its_closing_boundary_is_malformed() -> None:
    body, ctype = encode_multipart_formdata({"path": "/x"})
    with pytest.raises(ApiError) as raised:
        parse_form(ctype, body[: -len(b"--\r\n") - 10])
    assert raised.value.error_code == "MALFORMED_REQUEST"
