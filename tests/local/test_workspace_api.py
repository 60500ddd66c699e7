"""Workspace API 2.0 of the local workspace, driven through databricks-sdk over HTTP."""

from __future__ import annotations

import base64
import io
import json

import pytest
import requests
from databricks.sdk.errors import NotFound, ResourceAlreadyExists
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language, ObjectType

from orchestrator.local.server import LocalWorkspace

PY_SOURCE = b"# Databricks notebook source\nprint('hi')\n\n# COMMAND ----------\n\nx = 1\n"


def test_well_known_config_answers_empty_object(workspace: LocalWorkspace) -> None:
    resp = requests.get(f"{workspace.url}/.well-known/databricks-config", timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {}


def test_wrong_token_is_401_with_databricks_error(workspace: LocalWorkspace) -> None:
    resp = requests.get(
        f"{workspace.url}/api/2.0/workspace/list",
        params={"path": "/"},
        headers={"Authorization": "Bearer wrong"},
        timeout=5,
    )
    assert resp.status_code == 401
    assert set(resp.json()) == {"error_code", "message"}


def test_mkdirs_list_and_get_status(client) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/Shared/builds/repo")
    status = client.workspace.get_status("/Shared/builds")
    assert status.object_type == ObjectType.DIRECTORY
    names = [o.path for o in client.workspace.list("/Shared/builds")]
    assert names == ["/Shared/builds/repo"]
    assert list(client.workspace.list("/Shared/builds/repo")) == []


def test_import_json_and_multipart_then_export_all_formats(client) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/nb")
    client.workspace.import_(
        "/nb/json_nb",
        content=base64.b64encode(PY_SOURCE).decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
    )
    client.workspace.upload("/nb/multi_nb", io.BytesIO(b"print(1)\n"), language=Language.R)
    assert client.workspace.get_status("/nb/json_nb").language == Language.PYTHON
    assert client.workspace.get_status("/nb/multi_nb").language == Language.R
    source = client.workspace.download("/nb/json_nb").read()
    assert source == PY_SOURCE
    jupyter = client.workspace.export("/nb/json_nb", format=ExportFormat.JUPYTER)
    doc = json.loads(base64.b64decode(jupyter.content))
    assert doc["nbformat"] == 4 and len(doc["cells"]) == 2
    html = client.workspace.export("/nb/json_nb", format=ExportFormat.HTML)
    assert b"print" in base64.b64decode(html.content)


def test_auto_import_detects_notebooks_files_and_jupyter(client) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/auto")
    client.workspace.upload("/auto/nb.py", PY_SOURCE, format=ImportFormat.AUTO)
    client.workspace.upload("/auto/data.csv", b"a,b\n1,2\n", format=ImportFormat.AUTO)
    ipynb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"language_info": {"name": "R"}},
        "cells": [
            {
                "cell_type": "code",
                "source": "1+1",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
            }
        ],
    }
    client.workspace.upload(
        "/auto/r_nb.ipynb", json.dumps(ipynb).encode(), format=ImportFormat.AUTO
    )
    objects = {o.path: o for o in client.workspace.list("/auto")}
    assert objects["/auto/nb"].object_type == ObjectType.NOTEBOOK
    assert objects["/auto/data.csv"].object_type == ObjectType.FILE
    assert objects["/auto/r_nb"].language == Language.R
    assert client.workspace.download("/auto/data.csv").read() == b"a,b\n1,2\n"


def test_overwrite_rules(client) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/o")
    client.workspace.upload("/o/nb", PY_SOURCE, language=Language.PYTHON)
    with pytest.raises(ResourceAlreadyExists):
        client.workspace.upload("/o/nb", PY_SOURCE, language=Language.PYTHON)
    client.workspace.upload("/o/nb", b"print(2)\n", language=Language.PYTHON, overwrite=True)
    assert b"print(2)" in client.workspace.download("/o/nb").read()
    with pytest.raises(ResourceAlreadyExists):
        client.workspace.upload("/o", PY_SOURCE, language=Language.PYTHON, overwrite=True)


def test_import_into_missing_folder_is_not_found(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        client.workspace.upload("/missing/nb", PY_SOURCE, language=Language.PYTHON)


def test_import_over_10_mb_is_rejected(client) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/big")
    with pytest.raises(DatabricksError) as info:
        client.workspace.upload(
            "/big/f.bin", b"x" * (10 * 1024 * 1024 + 1), format=ImportFormat.AUTO
        )
    assert info.value.error_code == "MAX_NOTEBOOK_SIZE_EXCEEDED"
    assert list(client.workspace.list("/big")) == []


#: 10 MB of base64 holds 7,864,320 bytes: the documented limit is on the base64 content
FITS = 10 * 1024 * 1024 // 4 * 3


@pytest.mark.parametrize("how", ["import_ (JSON, base64)", "upload (multipart)"])
def test_the_10_mb_limit_is_on_the_base64_content(client, how: str) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/b64")

    def send(path: str, size: int) -> None:
        data = b"x" * size
        if how.startswith("import_"):
            content = base64.b64encode(data).decode()
            client.workspace.import_(path, content=content, format=ImportFormat.RAW)
        else:
            client.workspace.upload(path, data, format=ImportFormat.RAW)

    send("/b64/fits", FITS)  # exactly 10 MB of base64
    assert client.workspace.get_status("/b64/fits").size == FITS
    with pytest.raises(DatabricksError) as info:
        send("/b64/over", FITS + 1)  # 7.5 MB of bytes, 4 base64 characters too many
    assert info.value.error_code == "MAX_NOTEBOOK_SIZE_EXCEEDED"
    assert "(10485764 bytes)" in str(info.value)
    assert [o.path for o in client.workspace.list("/b64")] == ["/b64/fits"]


def test_delete_non_empty_folder_needs_recursive(client) -> None:  # type: ignore[no-untyped-def]
    client.workspace.mkdirs("/d/sub")
    client.workspace.upload("/d/sub/f.txt", b"x", format=ImportFormat.AUTO)
    with pytest.raises(DatabricksError) as info:
        client.workspace.delete("/d")
    assert info.value.error_code == "DIRECTORY_NOT_EMPTY"
    client.workspace.delete("/d", recursive=True)
    with pytest.raises(NotFound):
        client.workspace.get_status("/d/sub/f.txt")
    with pytest.raises(NotFound):
        client.workspace.delete("/d")


def test_a_recursive_delete_takes_only_what_is_under_the_path(client) -> None:  # type: ignore[no-untyped-def]
    """Paths compare as they are: deleting /c/B leaves /c/b, /c/B0 and /c/B_x (a prefix match
    that ignored case, or took ``_`` for any character, would take them)."""
    for folder in ("/c/B/sub", "/c/b/sub", "/c/B0", "/c/B_x"):
        client.workspace.mkdirs(folder)
        client.workspace.upload(f"{folder}/f.txt", b"x", format=ImportFormat.AUTO)
    client.workspace.delete("/c/B", recursive=True)
    left = sorted(o.path for o in client.workspace.list("/c"))
    assert left == ["/c/B0", "/c/B_x", "/c/b"]
    assert client.workspace.get_status("/c/b/sub/f.txt").object_type == ObjectType.FILE
    with pytest.raises(NotFound):
        client.workspace.get_status("/c/B/sub/f.txt")


def test_json_accepted_whatever_the_json_content_type(workspace: LocalWorkspace) -> None:
    resp = requests.post(
        f"{workspace.url}/api/2.0/workspace/mkdirs",
        data=json.dumps({"path": "/legacy"}),
        headers={"Authorization": f"Bearer {workspace.token}", "Content-Type": "text/json"},
        timeout=5,
    )
    assert resp.status_code == 200
    resp = requests.get(
        f"{workspace.url}/api/2.0/workspace/get-status",
        params={"path": "/legacy"},
        headers={"Authorization": f"Bearer {workspace.token}"},
        timeout=5,
    )
    assert resp.json()["object_type"] == "DIRECTORY"


def test_dot_segments_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatabricksError) as info:
        client.workspace.mkdirs("/a/../../etc")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_deleted_folder_goes_straight_to_a_new_name_in_the_trash_then_away(
    workspace: LocalWorkspace,
    client,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """A folder is renamed into the trash under a fresh random name (no folder is made to
    hold it), never onto what the trash holds, and nothing of it is left after the delete."""
    import orchestrator.local.state.confined as confined

    trash = workspace.store.workspace_tree.trash
    taken = trash / "delete-aaaa"
    (taken / "tree").mkdir(parents=True)  # as a delete cut short would leave it
    names = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(confined.secrets, "token_hex", lambda _n: next(names))
    client.workspace.mkdirs("/gone/sub")
    client.workspace.upload("/gone/sub/f.txt", b"x", format=ImportFormat.AUTO)

    client.workspace.delete("/gone", recursive=True)

    with pytest.raises(NotFound):
        client.workspace.get_status("/gone")
    assert sorted(p.name for p in trash.iterdir()) == ["delete-aaaa"]
    assert (taken / "tree").is_dir()
