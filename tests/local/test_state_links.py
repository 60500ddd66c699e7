"""The state tree is never reached through a symbolic link, and abandoned uploads do not stay.

A notebook runs with the workspace mirror as its working folder and the DBFS root as
``/dbfs``: it can plant a link (``ln -s /home /dbfs/x``). Each test plants one pointing at a
folder outside the state dir (``outside``, holding ``secret.txt``), then drives the APIs over
HTTP: nothing outside is read, written or deleted, a link that is itself the object deleted
is deleted, and its target stays. The DBFS ``create`` handles: those a killed workspace left
are removed when the next one starts, an idle one expires with its temporary file.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from orchestrator.local.state.store import Store
from tests.conftest import TOKEN
from tests.fakes import FakeExecutor

SECRET = b"outside the state dir"
NB = base64.b64encode(b"# Databricks notebook source\nprint(1)\n").decode()


def call(ws: LocalWorkspace, method: str, route: str, body: Any = None, **params: Any) -> Any:
    response = requests.request(
        method,
        f"{ws.url}/api/{route}",
        json=body,
        params=params,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    return response.status_code, response.json()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(SECRET)
    return folder


def _untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == SECRET


def test_dbfs_never_follows_a_planted_link(ws: LocalWorkspace, outside: Path) -> None:
    (ws.store.dbfs_root / "data").mkdir()
    (ws.store.dbfs_root / "data" / "out").symlink_to(outside)
    (ws.store.dbfs_root / "data" / "file").symlink_to(outside / "secret.txt")
    refused = "INVALID_STATE"
    status, body = call(ws, "GET", "2.0/dbfs/read", path="/data/out/secret.txt")
    assert (status, body["error_code"]) == (400, refused)
    status, body = call(ws, "GET", "2.0/dbfs/read", path="/data/file")
    assert (status, body["error_code"]) == (400, refused)
    status, body = call(ws, "POST", "2.0/dbfs/put", {"path": "/data/out/new", "contents": NB})
    assert (status, body["error_code"]) == (400, refused)
    status, body = call(ws, "POST", "2.0/dbfs/mkdirs", {"path": "/data/out/sub"})
    assert (status, body["error_code"]) == (400, refused)
    status, body = call(ws, "POST", "2.0/dbfs/create", {"path": "/data/out/streamed"})
    assert (status, body["error_code"]) == (400, refused)
    status, body = call(ws, "GET", "2.0/dbfs/list", path="/data/out")  # a link, not a folder
    assert status == 200 and body["files"][0]["is_dir"] is False
    status, body = call(
        ws,
        "POST",
        "2.0/dbfs/move",
        {"source_path": "/data/out/secret.txt", "destination_path": "/moved"},
    )
    assert (status, body["error_code"]) == (400, refused)
    _untouched(outside)
    # the links are listed as what they are, and deleted themselves
    status, body = call(ws, "GET", "2.0/dbfs/list", path="/data")
    assert status == 200
    assert {f["path"]: f["is_dir"] for f in body["files"]} == {
        "/data/file": False,
        "/data/out": False,
    }
    assert call(ws, "POST", "2.0/dbfs/delete", {"path": "/data/out"})[0] == 200
    assert call(ws, "POST", "2.0/dbfs/delete", {"path": "/data", "recursive": True})[0] == 200
    assert not (ws.store.dbfs_root / "data").exists()
    _untouched(outside)


def test_dbfs_put_over_a_planted_link_replaces_the_link(ws: LocalWorkspace, outside: Path) -> None:
    (ws.store.dbfs_root / "f").symlink_to(outside / "secret.txt")
    status, _ = call(ws, "POST", "2.0/dbfs/put", {"path": "/f", "contents": NB, "overwrite": True})
    assert status == 200
    assert not (ws.store.dbfs_root / "f").is_symlink()
    assert (ws.store.dbfs_root / "f").read_bytes() == base64.b64decode(NB)
    _untouched(outside)


def test_the_workspace_never_follows_a_planted_link(ws: LocalWorkspace, outside: Path) -> None:
    assert call(ws, "POST", "2.0/workspace/mkdirs", {"path": "/Shared/build/lib"})[0] == 200
    nb = {"path": "/Shared/build/nb", "language": "PYTHON", "content": NB}
    assert call(ws, "POST", "2.0/workspace/import", nb)[0] == 200
    mirror = ws.store.workspace_root / "Shared" / "build"
    # the folder lib and the notebook nb replaced by links to the outside
    (mirror / "lib").rmdir()
    (mirror / "lib").symlink_to(outside)
    (mirror / "nb").unlink()
    (mirror / "nb").symlink_to(outside / "secret.txt")
    into = {"path": "/Shared/build/lib/x", "language": "PYTHON", "content": NB}
    status, body = call(ws, "POST", "2.0/workspace/import", into)
    assert (status, body["error_code"]) == (400, "INVALID_STATE")
    status, body = call(ws, "POST", "2.0/workspace/mkdirs", {"path": "/Shared/build/lib/y"})
    assert (status, body["error_code"]) == (400, "INVALID_STATE")
    status, body = call(ws, "GET", "2.0/workspace/export", path="/Shared/build/nb")
    assert (status, body["error_code"]) == (400, "INVALID_STATE")
    _untouched(outside)
    assert ws.store.get_object("/Shared/build/lib/x") is None  # refused: no row either
    # importing over the notebook replaces the link, not its target
    again = {**nb, "overwrite": True}
    assert call(ws, "POST", "2.0/workspace/import", again)[0] == 200
    assert not (mirror / "nb").is_symlink()
    _untouched(outside)
    # deleting the folder removes the link itself, with its row
    assert call(ws, "POST", "2.0/workspace/delete", {"path": "/Shared/build/lib"})[0] == 200
    assert not (mirror / "lib").is_symlink() and not (mirror / "lib").exists()
    assert ws.store.get_object("/Shared/build/lib") is None
    (mirror / "nb").unlink()
    (mirror / "nb").symlink_to(outside / "secret.txt")
    assert call(ws, "POST", "2.0/workspace/delete", {"path": "/Shared/build/nb"})[0] == 200
    assert not (mirror / "nb").is_symlink()
    assert (
        call(ws, "POST", "2.0/workspace/delete", {"path": "/Shared/build", "recursive": True})[0]
        == 200
    )
    _untouched(outside)


def test_a_state_dir_whose_tree_is_a_link_is_refused(tmp_path: Path, outside: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "dbfs").symlink_to(outside)
    with pytest.raises(ValueError, match="symbolic link"):
        Store(state)
    _untouched(outside)


# --- DBFS handles ------------------------------------------------------------------------------


def _dbfs_temps(store: Store) -> list[str]:
    return sorted(p.name for p in store.tmp_root.glob("dbfs-*"))


def test_handles_a_killed_workspace_left_are_removed_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ws = start_local_workspace(state, token=TOKEN, executor=FakeExecutor())
    try:
        for i in range(20):
            status, body = call(ws, "POST", "2.0/dbfs/create", {"path": f"/up/{i}"})
            assert status == 200
            block = {"handle": body["handle"], "data": NB}
            assert call(ws, "POST", "2.0/dbfs/add-block", block)[0] == 200
        assert len(_dbfs_temps(ws.store)) == 20
    finally:
        ws.stop()  # as a kill would: the handles are gone with the process, the files are not
    assert len(list((state / "tmp").glob("dbfs-*"))) == 20
    again = start_local_workspace(state, token=TOKEN, executor=FakeExecutor())
    try:
        assert _dbfs_temps(again.store) == []
        assert not (state / "dbfs" / "up").exists()
    finally:
        again.stop()


def test_an_idle_handle_expires_with_its_temporary_file(tmp_path: Path) -> None:
    ws = start_local_workspace(
        tmp_path / "state", token=TOKEN, executor=FakeExecutor(), dbfs_handle_idle_seconds=0.3
    )
    try:
        status, body = call(ws, "POST", "2.0/dbfs/create", {"path": "/up/big"})
        assert status == 200
        assert (
            call(ws, "POST", "2.0/dbfs/add-block", {"handle": body["handle"], "data": NB})[0] == 200
        )
        assert len(_dbfs_temps(ws.store)) == 1
        for _ in range(600):  # the sweep runs on its own, no request needed
            if not _dbfs_temps(ws.store):
                break
            time.sleep(0.05)
        assert _dbfs_temps(ws.store) == []
        status, answer = call(ws, "POST", "2.0/dbfs/close", {"handle": body["handle"]})
        assert (status, answer["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
        assert not (ws.store.dbfs_root / "up").exists()
    finally:
        ws.stop()
