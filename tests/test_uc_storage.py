"""Writing a Unity Catalog model version's files with the credentials
``model-versions/generate-temporary-credentials`` hands out, for the storage kinds the local
workspace never answers (it always answers ``DEFAULT_STORAGE``, see
``tests/test_uc_registration.py``).

Azure's user delegation SAS is written through the DFS endpoint (create, append, flush). No
emulator serves that endpoint (Azurite serves Blob only), so these tests stand a fake DFS
server on loopback that speaks the three calls of Azure's Path REST reference and keeps what
it is sent; it checks the SAS is on every request, as the real endpoint would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from orchestrator.adapters.databricks.uc_storage import write_version_files
from orchestrator.errors import InfrastructureError
from tests.test_retries import closed_port

pytestmark = pytest.mark.fast

SAS = "sv=2023-11-03&sr=d&sp=rwl&sig=not-a-real-signature"
LOCATION = "abfss://models@acct.dfs.core.windows.net/metastore/models/abc/versions/3"


class FakeDfs(ThreadingHTTPServer):
    """Path - Create (``PUT ?resource=file``), Path - Update (``PATCH ?action=append`` and
    ``?action=flush``): a file is readable once flushed at its full length."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _DfsHandler)
        self.pending: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self.calls: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _DfsHandler(BaseHTTPRequestHandler):
    server: FakeDfs

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read no log
        pass

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _parts(self) -> tuple[str, dict[str, str]] | None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if query.get("sig") != "not-a-real-signature":
            self._answer(403)  # AuthenticationFailed
            return None
        return unquote(url.path), query

    def do_PUT(self) -> None:
        parts = self._parts()
        if parts is None:
            return
        path, query = parts
        self.server.calls.append(("PUT", query.get("resource", "")))
        if query.get("resource") != "file":
            self._answer(400)
            return
        self.server.pending[path] = b""
        self._answer(201)

    def do_PATCH(self) -> None:
        parts = self._parts()
        if parts is None:
            return
        path, query = parts
        action = query.get("action", "")
        self.server.calls.append(("PATCH", action))
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path not in self.server.pending:
            self._answer(404)  # PathNotFound
        elif action == "append" and int(query["position"]) == len(self.server.pending[path]):
            self.server.pending[path] += data
            self._answer(202)
        elif action == "flush" and int(query["position"]) == len(self.server.pending[path]):
            self.server.files[path] = self.server.pending.pop(path)
            self._answer(200)
        else:
            self._answer(400)  # InvalidFlushPosition and the like


@pytest.fixture
def dfs() -> Iterator[FakeDfs]:
    server = FakeDfs()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def model_folder(tmp_path: Path) -> tuple[Path, list[str]]:
    folder = tmp_path / "model"
    (folder / "data").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "data" / "model.pkl").write_bytes(b"\x00\x01pickled")
    (folder / "empty.txt").write_bytes(b"")
    return folder, ["MLmodel", "data/model.pkl", "empty.txt"]


def write(
    tmp_path: Path,
    *,
    location: str,
    credentials: dict[str, Any],
    endpoint: str | None = None,
) -> str:
    """Write the model folder's files as version 3 of main.default.churn; the kind of
    credentials used (the Azure path asks the workspace nothing, so no client is given)."""
    folder, files = model_folder(tmp_path)
    return write_version_files(
        None,  # type: ignore[arg-type]
        name="main.default.churn",
        version="3",
        storage_location=location,
        credentials=credentials,
        folder=folder,
        files=files,
        endpoint=endpoint,
    )


def test_an_azure_sas_writes_each_file_into_the_versions_storage_location(
    dfs: FakeDfs, tmp_path: Path
) -> None:
    kind = write(
        tmp_path,
        location=LOCATION,
        credentials={"azure_user_delegation_sas": {"sas_token": "?" + SAS}},
        endpoint=dfs.url,
    )
    assert kind == "azure_user_delegation_sas"
    root = "/models/metastore/models/abc/versions/3"
    assert dfs.files == {
        f"{root}/MLmodel": b"flavors: {}\n",
        f"{root}/data/model.pkl": b"\x00\x01pickled",
        f"{root}/empty.txt": b"",
    }
    assert dfs.pending == {}
    # an empty file is created and flushed, with nothing appended
    assert dfs.calls.count(("PATCH", "append")) == 2


def test_a_location_that_is_not_adls_gen2_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InfrastructureError) as caught:
        write(
            tmp_path,
            location="s3://bucket/models/abc",
            credentials={"azure_user_delegation_sas": {"sas_token": SAS}},
        )
    assert "abfss://" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind", ["aws_temp_credentials", "gcp_oauth_token", "r2_temp_credentials"])
def test_other_clouds_credentials_stop_the_build_naming_the_kind(tmp_path: Path, kind: str) -> None:
    with pytest.raises(InfrastructureError) as caught:
        write(
            tmp_path,
            location="s3://bucket/models/abc",
            credentials={kind: {"access_key_id": "x"}},
        )
    message = str(caught.value)
    assert kind in message
    assert "model main.default.churn version 3" in message


def test_storage_that_does_not_answer_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A connection refused on the DFS endpoint is the build's one-line infrastructure error
    (exit 3), as for every other write, not a requests exception."""
    with pytest.raises(InfrastructureError) as caught:
        write(
            tmp_path,
            location="abfss://models@acct.dfs.core.windows.net/v3",
            credentials={"azure_user_delegation_sas": {"sas_token": SAS}},
            endpoint=f"http://127.0.0.1:{closed_port()}",  # nothing listens there
        )
    assert "ConnectionError" in str(caught.value)
    assert "model main.default.churn version 3" in str(caught.value)
    assert "sig=" not in str(caught.value)  # the SAS stays out of the message
