"""Files API of the local workspace (Unity Catalog volumes), through databricks-sdk's
``w.files`` as a client calls it, and raw HTTP for what the SDK hides."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import requests
from databricks.sdk.errors import AlreadyExists, BadRequest, NotFound

from orchestrator.local.server import LocalWorkspace
from tests.conftest import sdk_client

VOLUME = "/Volumes/main/default/landing"


@pytest.fixture
def volume(ws: LocalWorkspace) -> Path:
    """A volume's folder, as local.dbfs, dbutils.fs.mkdirs or DBFS mkdirs make it."""
    folder = Path(ws.store.state_dir) / "dbfs" / "Volumes" / "main" / "default" / "landing"
    folder.mkdir(parents=True)
    return folder


def call(ws: LocalWorkspace, method: str, route: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {ws.token}", **kwargs.pop("headers", {})}
    return requests.request(
        method, f"{ws.url}/api/2.0/fs/{route}", headers=headers, timeout=10, **kwargs
    )


def test_upload_download_metadata_and_delete_through_the_sdk(
    ws: LocalWorkspace, volume: Path
) -> None:
    w = sdk_client(ws)
    w.files.upload(f"{VOLUME}/in/orders 1.csv", io.BytesIO(b"qty\n2\n3\n"))
    assert (volume / "in" / "orders 1.csv").read_bytes() == b"qty\n2\n3\n"  # what notebooks read
    downloaded = w.files.download(f"{VOLUME}/in/orders 1.csv")
    assert downloaded.contents is not None
    assert downloaded.contents.read() == b"qty\n2\n3\n"
    meta = w.files.get_metadata(f"{VOLUME}/in/orders 1.csv")
    assert meta.content_length == 8
    assert meta.last_modified
    with pytest.raises(AlreadyExists):
        w.files.upload(f"{VOLUME}/in/orders 1.csv", io.BytesIO(b"x"), overwrite=False)
    w.files.upload(f"{VOLUME}/in/orders 1.csv", io.BytesIO(b"new"))  # overwrite by default
    assert (volume / "in" / "orders 1.csv").read_bytes() == b"new"
    w.files.delete(f"{VOLUME}/in/orders 1.csv")
    assert not (volume / "in" / "orders 1.csv").exists()
    with pytest.raises(NotFound):
        w.files.delete(f"{VOLUME}/in/orders 1.csv")


def test_directories_are_made_listed_and_deleted_when_empty(
    ws: LocalWorkspace, volume: Path
) -> None:
    w = sdk_client(ws)
    w.files.create_directory(f"{VOLUME}/a/b")
    w.files.create_directory(f"{VOLUME}/a/b")  # idempotent
    (volume / "a" / "f.txt").write_text("hello")
    w.files.get_directory_metadata(f"{VOLUME}/a")
    entries = {e.name: e for e in w.files.list_directory_contents(f"{VOLUME}/a")}
    assert set(entries) == {"b", "f.txt"}
    assert entries["b"].is_directory and entries["b"].file_size is None
    assert entries["f.txt"].path == f"{VOLUME}/a/f.txt" and entries["f.txt"].file_size == 5
    with pytest.raises(BadRequest):
        w.files.delete_directory(f"{VOLUME}/a")  # not empty
    w.files.delete_directory(f"{VOLUME}/a/b")
    assert not (volume / "a" / "b").exists()
    with pytest.raises(NotFound):
        w.files.get_directory_metadata(f"{VOLUME}/a/b")


def test_listing_pages_by_name(ws: LocalWorkspace, volume: Path) -> None:
    for name in "dcba":
        (volume / name).write_text(name)
    first = call(ws, "GET", f"directories{VOLUME}", params={"page_size": 3}).json()
    assert [e["name"] for e in first["contents"]] == ["a", "b", "c"]
    second = call(
        ws,
        "GET",
        f"directories{VOLUME}",
        params={"page_size": 3, "page_token": first["next_page_token"]},
    ).json()
    assert [e["name"] for e in second["contents"]] == ["d"]
    assert "next_page_token" not in second
    assert [e.name for e in sdk_client(ws).files.list_directory_contents(VOLUME)] == list("abcd")


def test_a_range_is_answered_with_206(ws: LocalWorkspace, volume: Path) -> None:
    (volume / "r.bin").write_bytes(b"0123456789")
    resp = call(ws, "GET", f"files{VOLUME}/r.bin", headers={"Range": "bytes=2-4"})
    assert resp.status_code == 206
    assert resp.content == b"234"
    assert resp.headers["Content-Range"] == "bytes 2-4/10"
    assert call(ws, "GET", f"files{VOLUME}/r.bin", headers={"Range": "bytes=-3"}).content == b"789"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/Volumes/main/default/nope/x.csv", 404, "NOT_FOUND"),  # no such volume
        ("/Volumes/main/default", 400, "INVALID_PARAMETER_VALUE"),  # not in a volume
        ("/FileStore/x.csv", 400, "INVALID_PARAMETER_VALUE"),  # DBFS is the DBFS API's
        ("/Volumes/main/default/landing/../../x", 400, "INVALID_PARAMETER_VALUE"),
        ("/Volumes/main/default/landing/%ff", 400, "INVALID_PARAMETER_VALUE"),
    ],
)
def test_paths_outside_an_existing_volume_are_refused(
    ws: LocalWorkspace, volume: Path, path: str, status: int, code: str
) -> None:
    before = sorted(p.name for p in volume.parent.parent.parent.rglob("*"))
    resp = call(ws, "PUT", f"files{path}", data=b"x")
    assert resp.status_code == status, resp.text
    assert resp.json()["error_code"] == code
    assert sorted(p.name for p in volume.parent.parent.parent.rglob("*")) == before


def test_a_missing_file_is_404_for_download_and_metadata(ws: LocalWorkspace, volume: Path) -> None:
    w = sdk_client(ws)
    with pytest.raises(NotFound):
        w.files.download(f"{VOLUME}/missing.csv").contents.read()  # type: ignore[union-attr]
    assert call(ws, "HEAD", f"files{VOLUME}/missing.csv").status_code == 404
    (volume / "d").mkdir()
    assert call(ws, "GET", f"files{VOLUME}/d").status_code == 404  # a directory is no file


def test_the_dbfs_api_sees_a_volume_as_dbfs_volumes(ws: LocalWorkspace, volume: Path) -> None:
    w = sdk_client(ws)
    w.files.upload(f"{VOLUME}/x.txt", io.BytesIO(b"via files"))
    assert [f.path for f in w.dbfs.list(f"dbfs:{VOLUME}")] == [f"{VOLUME}/x.txt"]


def test_requests_are_counted_per_endpoint_not_per_file(ws: LocalWorkspace, volume: Path) -> None:
    ws.faults.reset_counts()
    for name in ("a", "b", "c"):
        assert call(ws, "PUT", f"files{VOLUME}/{name}", data=b"x").status_code == 204
    assert ws.faults.snapshot()["requests"] == {"PUT fs/files/{path}": 3}


def test_metadata_gives_the_length_without_a_body(ws: LocalWorkspace, volume: Path) -> None:
    (volume / "big.bin").write_bytes(b"x" * 100_000)
    resp = call(ws, "HEAD", f"files{VOLUME}/big.bin")
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == "100000"
    assert resp.content == b""
    assert sdk_client(ws).files.get_metadata(f"{VOLUME}/big.bin").content_length == 100_000
