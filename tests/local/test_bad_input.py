"""Bad input to the local workspace: Databricks' 4xx answer, and nothing changes.

One table over the Workspace, DBFS, Jobs, Secrets, Permissions, Clusters, Instance Pools and
Cluster Policies endpoints. Each case sends
one request over HTTP to a workspace holding a few objects (a folder, a notebook, a DBFS file,
a job, a secret scope, permissions on the folder and the notebook) and asserts the HTTP
status, the ``error_code`` and that the state dir is byte for byte what it was: every file
under it, and a dump of the database. Limits are the documented ones (see
``orchestrator/local/state/limits.py``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.local.server import ClusterSpec, LocalWorkspace, start_local_workspace
from tests.fakes import FakeExecutor

TOKEN = "bad-input-token"
BAD = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
MALFORMED = "MALFORMED_REQUEST"
NB = base64.b64encode(b"# Databricks notebook source\nprint(1)\n").decode()
LONG_PATH = "/a" * 200_000  # 200,000 segments
OVER_PATH = "/" + "/".join(["abcdefghij"] * 380)  # 4180 bytes, names of 10
LONG_NAME = "/Shared/" + "n" * 256
#: the fewest bytes whose base64 is over 10 MB (10 MB of base64 holds 7,864,320 bytes)
OVER_BASE64_LIMIT = 10 * 1024 * 1024 // 4 * 3 + 1


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    route: str  # after /api/
    body: Any = None
    status: int = 400
    code: str = BAD
    params: dict[str, Any] = field(default_factory=dict)
    raw: bytes | None = None
    #: a multipart request: its form fields are ``body``, its files these
    files: dict[str, bytes] | None = None


def _task(key: str = "t", **extra: Any) -> dict[str, Any]:
    return {"task_key": key, "notebook_task": {"notebook_path": "/Shared/a/nb"}, **extra}


WORKSPACE = [
    Case("mkdirs 200,000 segments", "POST", "2.0/workspace/mkdirs", {"path": LONG_PATH}),
    Case("mkdirs path over 4096 bytes", "POST", "2.0/workspace/mkdirs", {"path": OVER_PATH}),
    Case("mkdirs name over 255 bytes", "POST", "2.0/workspace/mkdirs", {"path": LONG_NAME}),
    Case("mkdirs relative path", "POST", "2.0/workspace/mkdirs", {"path": "Shared/x"}),
    Case("mkdirs dot-dot", "POST", "2.0/workspace/mkdirs", {"path": "/Shared/../x"}),
    Case("mkdirs control char", "POST", "2.0/workspace/mkdirs", {"path": "/Shared/a\x01b"}),
    Case("mkdirs no path", "POST", "2.0/workspace/mkdirs", {}),
    Case("mkdirs path not a string", "POST", "2.0/workspace/mkdirs", {"path": 12}),
    Case(
        "mkdirs below a notebook",
        "POST",
        "2.0/workspace/mkdirs",
        {"path": "/Shared/a/nb/sub/deeper"},
        code=EXISTS,
    ),
    Case(
        "import over 10 MB",
        "POST",
        "2.0/workspace/import",
        {
            "path": "/Shared/a/big",
            "format": "RAW",
            "content": base64.b64encode(b"x" * (10 * 1024 * 1024 + 1)).decode(),
        },
        code="MAX_NOTEBOOK_SIZE_EXCEEDED",
    ),
    Case(
        "import base64 content 4 chars over 10 MB",
        "POST",
        "2.0/workspace/import",
        {
            "path": "/Shared/a/big",
            "format": "RAW",
            "content": base64.b64encode(b"x" * (OVER_BASE64_LIMIT)).decode(),
        },
        code="MAX_NOTEBOOK_SIZE_EXCEEDED",
    ),
    Case(
        "upload whose base64 would be 4 chars over 10 MB",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a/big", "format": "RAW"},
        code="MAX_NOTEBOOK_SIZE_EXCEEDED",
        files={"content": b"x" * OVER_BASE64_LIMIT},
    ),
    Case(
        "import invalid base64",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a/x", "language": "PYTHON", "content": "%%%"},
    ),
    Case(
        "import unknown language",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a/x", "language": "COBOL", "content": NB},
    ),
    Case(
        "import SOURCE without language",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a/x", "format": "SOURCE", "content": NB},
    ),
    Case(
        "import into a missing folder",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/missing/x", "language": "PYTHON", "content": NB},
        404,
        MISSING,
    ),
    Case(
        "import over a notebook without overwrite",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a/nb", "language": "PYTHON", "content": NB},
        code=EXISTS,
    ),
    Case(
        "import over a folder",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a", "language": "PYTHON", "content": NB, "overwrite": True},
        code=EXISTS,
    ),
    Case(
        "import DBC",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a/x", "format": "DBC", "content": NB},
    ),
    Case(
        "import broken Jupyter",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a/x", "format": "JUPYTER", "content": NB},
    ),
    Case(
        "import to a 200,000-segment path",
        "POST",
        "2.0/workspace/import",
        {"path": LONG_PATH, "language": "PYTHON", "content": NB},
    ),
    Case("export a folder", "GET", "2.0/workspace/export", params={"path": "/Shared/a"}),
    Case(
        "export missing",
        "GET",
        "2.0/workspace/export",
        params={"path": "/Shared/none"},
        status=404,
        code=MISSING,
    ),
    Case(
        "export as DBC",
        "GET",
        "2.0/workspace/export",
        params={"path": "/Shared/a/nb", "format": "DBC"},
    ),
    Case("delete the root", "POST", "2.0/workspace/delete", {"path": "/", "recursive": True}),
    Case(
        "delete a full folder, not recursive",
        "POST",
        "2.0/workspace/delete",
        {"path": "/Shared/a"},
        code="DIRECTORY_NOT_EMPTY",
    ),
    Case("delete missing", "POST", "2.0/workspace/delete", {"path": "/nope"}, 404, MISSING),
    Case(
        "delete with recursive=maybe",
        "POST",
        "2.0/workspace/delete",
        {"path": "/Shared/a", "recursive": "maybe"},
    ),
    Case("get-status over-long", "GET", "2.0/workspace/get-status", params={"path": OVER_PATH}),
    Case(
        "list missing",
        "GET",
        "2.0/workspace/list",
        params={"path": "/nope"},
        status=404,
        code=MISSING,
    ),
    Case("malformed JSON", "POST", "2.0/workspace/mkdirs", raw=b"{not json", code=MALFORMED),
    Case("JSON body not an object", "POST", "2.0/workspace/mkdirs", raw=b"[]", code=MALFORMED),
]

DBFS = [
    Case("put 200,000 segments", "POST", "2.0/dbfs/put", {"path": LONG_PATH, "contents": ""}),
    Case("put path over 4096 bytes", "POST", "2.0/dbfs/put", {"path": OVER_PATH}),
    Case(
        "put over 1 MB inline",
        "POST",
        "2.0/dbfs/put",
        {"path": "/data/big", "contents": base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()},
        code="MAX_BLOCK_SIZE_EXCEEDED",
    ),
    Case("put invalid base64", "POST", "2.0/dbfs/put", {"path": "/data/x", "contents": "%%"}),
    Case(
        "put over a file without overwrite",
        "POST",
        "2.0/dbfs/put",
        {"path": "/data/f.txt", "contents": ""},
        code=EXISTS,
    ),
    Case("put to the root", "POST", "2.0/dbfs/put", {"path": "/", "contents": ""}),
    Case(
        "put below a file",
        "POST",
        "2.0/dbfs/put",
        {"path": "/data/f.txt/x/y", "contents": ""},
        code=EXISTS,
    ),
    Case("put relative path", "POST", "2.0/dbfs/put", {"path": "data/x", "contents": ""}),
    Case("mkdirs name over 255 bytes", "POST", "2.0/dbfs/mkdirs", {"path": "/d/" + "n" * 256}),
    Case(
        "mkdirs below a file", "POST", "2.0/dbfs/mkdirs", {"path": "/data/f.txt/sub"}, code=EXISTS
    ),
    Case(
        "create over a file without overwrite",
        "POST",
        "2.0/dbfs/create",
        {"path": "/data/f.txt"},
        code=EXISTS,
    ),
    Case(
        "read over 1 MB",
        "GET",
        "2.0/dbfs/read",
        params={"path": "/data/f.txt", "length": 1024 * 1024 + 1},
        code="MAX_READ_SIZE_EXCEEDED",
    ),
    Case(
        "read negative offset", "GET", "2.0/dbfs/read", params={"path": "/data/f.txt", "offset": -1}
    ),
    Case("read a folder", "GET", "2.0/dbfs/read", params={"path": "/data"}),
    Case(
        "read missing",
        "GET",
        "2.0/dbfs/read",
        params={"path": "/data/no"},
        status=404,
        code=MISSING,
    ),
    Case(
        "add-block unknown handle",
        "POST",
        "2.0/dbfs/add-block",
        {"handle": 9999, "data": "AAAA"},
        404,
        MISSING,
    ),
    Case("close unknown handle", "POST", "2.0/dbfs/close", {"handle": 9999}, 404, MISSING),
    Case("delete a full folder", "POST", "2.0/dbfs/delete", {"path": "/data"}, code="IO_ERROR"),
    Case("delete the root", "POST", "2.0/dbfs/delete", {"path": "/", "recursive": True}),
    Case(
        "move into itself",
        "POST",
        "2.0/dbfs/move",
        {"source_path": "/data", "destination_path": "/data/inner"},
    ),
    Case(
        "move missing",
        "POST",
        "2.0/dbfs/move",
        {"source_path": "/nope", "destination_path": "/elsewhere"},
        404,
        MISSING,
    ),
    Case(
        "move onto a file",
        "POST",
        "2.0/dbfs/move",
        {"source_path": "/data/g.txt", "destination_path": "/data/f.txt"},
        code=EXISTS,
    ),
    Case(
        "move to a 200,000-segment path",
        "POST",
        "2.0/dbfs/move",
        {"source_path": "/data/g.txt", "destination_path": LONG_PATH},
    ),
]

JOBS = [
    Case("create name over 4096 bytes", "POST", "2.1/jobs/create", {"name": "é" * 2049}),
    Case("create task_key with a space", "POST", "2.1/jobs/create", {"tasks": [_task("a b")]}),
    Case("create task_key of 101", "POST", "2.1/jobs/create", {"tasks": [_task("k" * 101)]}),
    Case("create duplicate task keys", "POST", "2.1/jobs/create", {"tasks": [_task(), _task()]}),
    Case(
        "create unknown dependency",
        "POST",
        "2.1/jobs/create",
        {"tasks": [_task(depends_on=[{"task_key": "nope"}])]},
    ),
    Case(
        "create dependency cycle",
        "POST",
        "2.1/jobs/create",
        {
            "tasks": [
                _task("a", depends_on=[{"task_key": "b"}]),
                _task("b", depends_on=[{"task_key": "a"}]),
            ]
        },
    ),
    Case(
        "create max_concurrent_runs 1001", "POST", "2.1/jobs/create", {"max_concurrent_runs": 1001}
    ),
    Case("create tasks not a list", "POST", "2.1/jobs/create", {"tasks": "x"}),
    Case("create timeout -1", "POST", "2.1/jobs/create", {"timeout_seconds": -1}),
    Case("create description too long", "POST", "2.1/jobs/create", {"description": "d" * 27_701}),
    Case(
        "create notebook task without path",
        "POST",
        "2.1/jobs/create",
        {"tasks": [{"task_key": "t", "notebook_task": {}}]},
    ),
    Case("create bad run_if", "POST", "2.1/jobs/create", {"tasks": [_task(run_if="SOMETIMES")]}),
    Case(
        "get missing job", "GET", "2.1/jobs/get", params={"job_id": 999}, status=404, code=MISSING
    ),
    Case("get job_id not a number", "GET", "2.1/jobs/get", params={"job_id": "abc"}),
    Case(
        "update tasks not a list",
        "POST",
        "2.1/jobs/update",
        {"job_id": 1, "new_settings": {"tasks": "x"}},
    ),
    Case(
        "update fields_to_remove not a list",
        "POST",
        "2.1/jobs/update",
        {"job_id": 1, "fields_to_remove": "tags"},
    ),
    Case("reset without new_settings", "POST", "2.1/jobs/reset", {"job_id": 1}),
    Case(
        "reset missing job",
        "POST",
        "2.1/jobs/reset",
        {"job_id": 999, "new_settings": {"name": "x"}},
        404,
        MISSING,
    ),
    Case("delete missing job", "POST", "2.1/jobs/delete", {"job_id": 999}, 404, MISSING),
    Case("run-now missing job", "POST", "2.1/jobs/run-now", {"job_id": 999}, 404, MISSING),
    Case(
        "run-now notebook_params not an object",
        "POST",
        "2.1/jobs/run-now",
        {"job_id": 1, "notebook_params": "x"},
    ),
    Case("run-now unknown only", "POST", "2.1/jobs/run-now", {"job_id": 1, "only": ["zz"]}),
    Case("submit without tasks", "POST", "2.1/jobs/runs/submit", {"run_name": "x"}),
    Case(
        "submit run_name over 4096 bytes",
        "POST",
        "2.1/jobs/runs/submit",
        {"run_name": "r" * 4097, "tasks": [_task()]},
    ),
    Case(
        "runs/get missing",
        "GET",
        "2.1/jobs/runs/get",
        params={"run_id": 999},
        status=404,
        code=MISSING,
    ),
    Case("runs/cancel missing", "POST", "2.1/jobs/runs/cancel", {"run_id": 999}, 404, MISSING),
    Case("runs/delete missing", "POST", "2.1/jobs/runs/delete", {"run_id": 999}, 404, MISSING),
    Case("runs/list limit 1001", "GET", "2.1/jobs/runs/list", params={"limit": 1001}),
    Case(
        "runs/list unknown run_type",
        "GET",
        "2.1/jobs/runs/list",
        params={"run_type": "NOTEBOOK_RUN"},
    ),
    Case(
        "runs/list active and completed",
        "GET",
        "2.1/jobs/runs/list",
        params={"active_only": "true", "completed_only": "true"},
    ),
    Case(
        "runs/export bad view",
        "GET",
        "2.1/jobs/runs/export",
        params={"run_id": 1, "views_to_export": "X"},
    ),
    Case("jobs/list limit 101", "GET", "2.1/jobs/list", params={"limit": 101}),
    Case("unknown endpoint", "GET", "2.1/jobs/nothing", status=404, code="ENDPOINT_NOT_FOUND"),
    Case("wrong method", "GET", "2.1/jobs/create", status=405, code="METHOD_NOT_ALLOWED"),
]

SECRETS = [
    Case("scope with a space", "POST", "2.0/secrets/scopes/create", {"scope": "a b"}),
    Case("scope with a slash", "POST", "2.0/secrets/scopes/create", {"scope": "a/b"}),
    Case("scope of 129", "POST", "2.0/secrets/scopes/create", {"scope": "s" * 129}),
    Case("scope exists", "POST", "2.0/secrets/scopes/create", {"scope": "s"}, code=EXISTS),
    Case("scope not a string", "POST", "2.0/secrets/scopes/create", {"scope": 5}),
    Case(
        "delete missing scope", "POST", "2.0/secrets/scopes/delete", {"scope": "zz"}, 404, MISSING
    ),
    Case(
        "put into a missing scope",
        "POST",
        "2.0/secrets/put",
        {"scope": "zz", "key": "k", "string_value": "v"},
        404,
        MISSING,
    ),
    Case(
        "put key with a slash",
        "POST",
        "2.0/secrets/put",
        {"scope": "s", "key": "a/b", "string_value": "v"},
    ),
    Case(
        "put key with @",
        "POST",
        "2.0/secrets/put",
        {"scope": "s", "key": "a@b", "string_value": "v"},
    ),
    Case(
        "put key of 129",
        "POST",
        "2.0/secrets/put",
        {"scope": "s", "key": "k" * 129, "string_value": "v"},
    ),
    Case(
        "put value over 128 KB",
        "POST",
        "2.0/secrets/put",
        {"scope": "s", "key": "big", "string_value": "v" * (128 * 1024 + 1)},
        code="MAX_SECRET_SIZE_EXCEEDED",
    ),
    Case("put without a value", "POST", "2.0/secrets/put", {"scope": "s", "key": "k2"}),
    Case(
        "put invalid bytes_value",
        "POST",
        "2.0/secrets/put",
        {"scope": "s", "key": "k2", "bytes_value": "%%"},
    ),
    Case(
        "list missing scope",
        "GET",
        "2.0/secrets/list",
        params={"scope": "zz"},
        status=404,
        code=MISSING,
    ),
    Case(
        "delete missing key",
        "POST",
        "2.0/secrets/delete",
        {"scope": "s", "key": "zz"},
        404,
        MISSING,
    ),
]


def _acl(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"access_control_list": list(entries)}


USERS_READ = {"group_name": "users", "permission_level": "CAN_READ"}
USERS_EDIT = {"group_name": "users", "permission_level": "CAN_EDIT"}
DIR = "2.0/permissions/directories/{/Shared/a}"  # {path}: that object's id, when sent
NOTEBOOK = "2.0/permissions/notebooks/{/Shared/a/nb}"
PERMISSIONS = [
    Case(
        "PUT a cluster's level on a folder",
        "PUT",
        DIR,
        _acl({**USERS_READ, "permission_level": "CAN_RESTART"}),
    ),
    Case(
        "PATCH an unknown level on a notebook",
        "PATCH",
        NOTEBOOK,
        _acl({**USERS_READ, "permission_level": "CAN_FLY"}),
    ),
    Case("PATCH without a level", "PATCH", NOTEBOOK, _acl({"group_name": "users"})),
    Case(
        "PUT an unknown user",
        "PUT",
        DIR,
        _acl({"user_name": "bob@example.com", "permission_level": "CAN_READ"}),
    ),
    Case(
        "PATCH an unknown group",
        "PATCH",
        DIR,
        _acl({"group_name": "data-eng", "permission_level": "CAN_READ"}),
    ),
    Case(
        "PUT a service principal",
        "PUT",
        NOTEBOOK,
        _acl({"service_principal_name": "app", "permission_level": "CAN_RUN"}),
    ),
    Case(
        "PATCH two principals in one entry",
        "PATCH",
        DIR,
        _acl({**USERS_READ, "user_name": "local@localhost"}),
    ),
    Case("PATCH an entry naming no one", "PATCH", DIR, _acl({"permission_level": "CAN_READ"})),
    Case(
        "PUT a list that is not one", "PUT", DIR, {"access_control_list": {"group_name": "users"}}
    ),
    Case("PUT an entry that is not an object", "PUT", DIR, _acl("users")),  # type: ignore[arg-type]
    Case(
        "PATCH a good grant then a bad one (nothing is written)",
        "PATCH",
        DIR,
        _acl(USERS_READ, {"group_name": "users", "user_name": "x", "permission_level": "CAN_READ"}),
    ),
    Case(
        "PATCH admins below CAN_MANAGE",
        "PATCH",
        DIR,
        _acl({"group_name": "admins", "permission_level": "CAN_EDIT"}),
    ),
    Case(
        "PUT the user below CAN_MANAGE on their home",
        "PUT",
        "2.0/permissions/directories/{/Users/local@localhost}",
        _acl({"user_name": "local@localhost", "permission_level": "CAN_READ"}),
    ),
    Case(
        "PUT on /Shared",
        "PUT",
        "2.0/permissions/directories/{/Shared}",
        _acl(USERS_READ),
        500,
        "INTERNAL_ERROR",
    ),
    Case(
        "GET a folder that does not exist",
        "GET",
        "2.0/permissions/directories/987654",
        status=404,
        code=MISSING,
    ),
    Case(
        "PUT a notebook that does not exist",
        "PUT",
        "2.0/permissions/notebooks/987654",
        _acl(USERS_READ),
        404,
        MISSING,
    ),
    Case(
        "PATCH a notebook as a folder",
        "PATCH",
        "2.0/permissions/directories/{/Shared/a/nb}",
        _acl(USERS_READ),
        404,
        MISSING,
    ),
    Case(
        "GET a folder's levels as a notebook's",
        "GET",
        "2.0/permissions/notebooks/{/Shared/a}/permissionLevels",
        status=404,
        code=MISSING,
    ),
    Case(
        "PUT the permissions of a cluster that does not exist",
        "PUT",
        "2.0/permissions/clusters/abc",
        _acl(USERS_READ),
        404,
        MISSING,
    ),
    Case(
        "PUT a repo's permissions",
        "PUT",
        "2.0/permissions/repos/1",
        _acl(USERS_READ),
        404,
        "ENDPOINT_NOT_FOUND",
    ),
    Case(
        "PUT a job's permissions at a folder's level",
        "PUT",
        "2.0/permissions/jobs/1",
        _acl(USERS_READ),
    ),
    Case(
        "PUT a job's permissions for nobody",
        "PUT",
        "2.0/permissions/jobs/1",
        _acl({"user_name": "nobody@x", "permission_level": "CAN_VIEW"}),
    ),
    Case(
        "PUT a group as a job's owner",
        "PUT",
        "2.0/permissions/jobs/1",
        _acl({"group_name": "users", "permission_level": "IS_OWNER"}),
    ),
    Case(
        "PATCH a job that does not exist",
        "PATCH",
        "2.0/permissions/jobs/987",
        _acl({"group_name": "users", "permission_level": "CAN_VIEW"}),
        404,
        MISSING,
    ),
    Case("DELETE permissions", "DELETE", DIR, status=405, code="METHOD_NOT_ALLOWED"),
]


def _path_of(size: int, prefix: str = "/Shared/") -> str:
    """A path of exactly ``size`` bytes, of names of 200 bytes or less (many folders deep)."""
    names, left = [], size - len(prefix)
    while left > 0:
        take = min(200, left)
        if left - take == 1:  # a name must not be left with nothing after its "/"
            take -= 1
        names.append("p" * take)
        left -= take + 1
    path = prefix + "/".join(names)
    assert len(path.encode()) == size, len(path.encode())
    return path


INT64 = 2**63
NOT_UTF8 = base64.b64encode(b"# Databricks notebook source\nprint('\xff\xfe')\n").decode()
NESTED = b'{"path": ' + b"[" * 5000 + b"]" * 5000 + b"}"
WIDE_NUMBER = b'{"job_id": ' + b"7" * 5000 + b"}"
#: the inputs of issue 25's probe that were answered 500, or not at all (bodies as sent)
HOSTILE = [
    Case("jobs/get job_id 2^63", "GET", "2.1/jobs/get", params={"job_id": INT64}),
    Case("runs/get run_id 2^63", "GET", "2.1/jobs/runs/get", params={"run_id": INT64}),
    Case(
        "runs/get-output run_id 2^64", "GET", "2.1/jobs/runs/get-output", params={"run_id": 2**64}
    ),
    Case("jobs/delete job_id 2^63", "POST", "2.1/jobs/delete", {"job_id": INT64}, code=MALFORMED),
    Case(
        "runs/cancel run_id -2^63-1",
        "POST",
        "2.1/jobs/runs/cancel",
        {"run_id": -INT64 - 1},
        code=MALFORMED,
    ),
    Case(
        "dbfs/read offset 2^63",
        "GET",
        "2.0/dbfs/read",
        params={"path": "/data/f.txt", "offset": INT64},
    ),
    Case("jobs/list offset of 40 digits", "GET", "2.1/jobs/list", params={"offset": "9" * 40}),
    Case("runs/list offset -1", "GET", "2.1/jobs/runs/list", params={"offset": -1}),
    Case(
        "a folder id 2^63", "GET", f"2.0/permissions/directories/{INT64}", status=404, code=MISSING
    ),
    Case(
        "a folder id of 20 digits",
        "GET",
        "2.0/permissions/directories/" + "9" * 20,
        status=404,
        code=MISSING,
    ),
    Case("JSON nested 5000 deep", "POST", "2.0/workspace/mkdirs", raw=NESTED, code=MALFORMED),
    Case(
        "JSON nested 65 deep", "POST", "2.1/jobs/create", raw=b"[" * 65 + b"]" * 65, code=MALFORMED
    ),
    Case("a 5000-digit number", "POST", "2.1/jobs/delete", raw=WIDE_NUMBER, code=MALFORMED),
    Case(
        "Infinity", "POST", "2.1/jobs/create", raw=b'{"timeout_seconds": Infinity}', code=MALFORMED
    ),
    Case(
        "-Infinity", "POST", "2.1/jobs/create", raw=b'{"name": "x", "x": -Infinity}', code=MALFORMED
    ),
    Case("NaN", "POST", "2.1/jobs/create", raw=b'{"max_concurrent_runs": NaN}', code=MALFORMED),
    Case("1e999", "POST", "2.1/jobs/create", raw=b'{"timeout_seconds": 1e999}', code=MALFORMED),
    Case(
        "a lone surrogate in a workspace path",
        "POST",
        "2.0/workspace/mkdirs",
        raw=b'{"path": "/Shared/a/\\ud800"}',
        code=MALFORMED,
    ),
    Case(
        "a lone surrogate in a DBFS path",
        "POST",
        "2.0/dbfs/put",
        raw=b'{"path": "/data/\\udfff", "contents": ""}',
        code=MALFORMED,
    ),
    Case(
        "a job name with a lone surrogate",
        "POST",
        "2.1/jobs/create",
        raw=b'{"name": "build \\ud800"}',
        code=MALFORMED,
    ),
    Case(
        "a key with a lone surrogate",
        "POST",
        "2.1/jobs/create",
        raw=b'{"\\udc00": 1}',
        code=MALFORMED,
    ),
    Case(
        "invalid UTF-8 in a JSON body",
        "POST",
        "2.1/jobs/create",
        raw=b'{"name": "\xff"}',
        code=MALFORMED,
    ),
    Case("mkdirs of exactly 4096 bytes", "POST", "2.0/workspace/mkdirs", {"path": _path_of(4096)}),
    Case(
        "import to exactly 4096 bytes",
        "POST",
        "2.0/workspace/import",
        {"path": _path_of(4096, "/Shared/a/"), "language": "PYTHON", "content": NB},
    ),
    Case(
        "DBFS put of exactly 4096 bytes", "POST", "2.0/dbfs/put", {"path": _path_of(4096, "/data/")}
    ),
    Case(
        "DBFS mkdirs of 1025 bytes", "POST", "2.0/dbfs/mkdirs", {"path": _path_of(1025, "/data/")}
    ),
    Case("DBFS create of 1025 bytes", "POST", "2.0/dbfs/create", {"path": _path_of(1025, "/d/")}),
    Case(
        "a non-UTF-8 SOURCE notebook",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a/latin1", "format": "SOURCE", "language": "PYTHON", "content": NOT_UTF8},
    ),
    Case(
        "a non-UTF-8 notebook by AUTO",
        "POST",
        "2.0/workspace/import",
        {"path": "/Shared/a/latin1.py", "format": "AUTO", "content": NOT_UTF8},
    ),
    Case(
        "depends_on naming a list",
        "POST",
        "2.1/jobs/create",
        {"tasks": [_task("a"), _task("b", depends_on=[{"task_key": ["a"]}])]},
    ),
    Case(
        "depends_on naming an object",
        "POST",
        "2.1/jobs/create",
        {"tasks": [_task("a"), _task("b", depends_on=[{"task_key": {"k": "a"}}])]},
    ),
    Case(
        "depends_on a string", "POST", "2.1/jobs/create", {"tasks": [_task("b", depends_on=["a"])]}
    ),
    Case(
        "a 1000-task cycle",
        "POST",
        "2.2/jobs/create",
        {
            "tasks": [
                _task(f"t{i}", depends_on=[{"task_key": f"t{(i + 1) % 1000}"}]) for i in range(1000)
            ]
        },
    ),
    Case(
        "a 3-task cycle in a submit",
        "POST",
        "2.2/jobs/runs/submit",
        {"tasks": [_task(f"t{i}", depends_on=[{"task_key": f"t{(i + 1) % 3}"}]) for i in range(3)]},
    ),
]

POOL = {"instance_pool_name": "p", "node_type_id": "local"}
COMPUTE = [
    Case(
        "delete /Shared",
        "POST",
        "2.0/workspace/delete",
        {"path": "/Shared"},
        code="DIRECTORY_PROTECTED",
    ),
    Case(
        "delete /Users",
        "POST",
        "2.0/workspace/delete",
        {"path": "/Users", "recursive": True},
        code="DIRECTORY_PROTECTED",
    ),
    Case(
        "delete the user's home",
        "POST",
        "2.0/workspace/delete",
        {"path": "/Users/local@localhost", "recursive": True},
        code="DIRECTORY_PROTECTED",
    ),
    Case(
        "create a cluster of an unknown runtime",
        "POST",
        "2.1/clusters/create",
        {"spark_version": "1.2.x-scala2.10", "cluster_name": "c"},
    ),
    Case(
        "create a cluster without a runtime", "POST", "2.1/clusters/create", {"cluster_name": "c"}
    ),
    Case(
        "create a cluster of another node type",
        "POST",
        "2.1/clusters/create",
        {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2"},
    ),
    Case(
        "create a cluster in a pool that does not exist",
        "POST",
        "2.1/clusters/create",
        {"spark_version": "15.4.x-scala2.12", "instance_pool_id": "0101-pool-nope"},
    ),
    Case(
        "create a cluster under a policy that does not exist",
        "POST",
        "2.1/clusters/create",
        {"spark_version": "15.4.x-scala2.12", "policy_id": "NOPE"},
    ),
    Case(
        "create a cluster with negative workers",
        "POST",
        "2.1/clusters/create",
        {"spark_version": "15.4.x-scala2.12", "num_workers": -1},
    ),
    Case(
        "edit a cluster that does not exist",
        "POST",
        "2.1/clusters/edit",
        {"cluster_id": "nope", "spark_version": "15.4.x-scala2.12"},
    ),
    Case(
        "restart a terminated cluster",
        "POST",
        "2.1/clusters/restart",
        {"cluster_id": "0000-000000-local"},
        code="INVALID_STATE",
    ),
    Case("resize with nothing", "POST", "2.1/clusters/resize", {"cluster_id": "0000-000000-local"}),
    Case(
        "events of a cluster that does not exist",
        "POST",
        "2.1/clusters/events",
        {"cluster_id": "nope"},
    ),
    Case(
        "events with a limit over 500",
        "POST",
        "2.1/clusters/events",
        {"cluster_id": "0000-000000-local", "limit": 501},
    ),
    Case(
        "give a cluster to nobody",
        "POST",
        "2.1/clusters/change-owner",
        {"cluster_id": "0000-000000-local", "owner_username": "nobody@x"},
    ),
    Case(
        "create a pool without a name",
        "POST",
        "2.0/instance-pools/create",
        {"node_type_id": "local"},
    ),
    Case(
        "create a pool of another node type",
        "POST",
        "2.0/instance-pools/create",
        {**POOL, "node_type_id": "Standard_DS3_v2"},
    ),
    Case(
        "create a pool with more idle than capacity",
        "POST",
        "2.0/instance-pools/create",
        {**POOL, "min_idle_instances": 3, "max_capacity": 2},
    ),
    Case(
        "create a pool of an unknown runtime",
        "POST",
        "2.0/instance-pools/create",
        {**POOL, "preloaded_spark_versions": ["1.2.x-scala2.10"]},
    ),
    Case(
        "get a pool that does not exist",
        "GET",
        "2.0/instance-pools/get",
        params={"instance_pool_id": "nope"},
        status=404,
        code=MISSING,
    ),
    Case(
        "delete a pool that does not exist",
        "POST",
        "2.0/instance-pools/delete",
        {"instance_pool_id": "nope"},
        status=404,
        code=MISSING,
    ),
    Case(
        "create a policy that is not JSON",
        "POST",
        "2.0/policies/clusters/create",
        {"name": "p", "definition": "{"},
    ),
    Case(
        "create a policy with an unknown rule type",
        "POST",
        "2.0/policies/clusters/create",
        {"name": "p", "definition": json.dumps({"spark_version": {"type": "maybe"}})},
    ),
    Case(
        "create a policy of a family",
        "POST",
        "2.0/policies/clusters/create",
        {"name": "p", "policy_family_id": "personal-vm"},
    ),
    Case(
        "create a job in a pool that does not exist",
        "POST",
        "2.1/jobs/create",
        {
            "name": "j",
            "tasks": [
                _task(
                    new_cluster={
                        "spark_version": "15.4.x-scala2.12",
                        "instance_pool_id": "0727-pool-made-up",
                    }
                )
            ],
        },
    ),
    Case(
        "create a job naming a job cluster it lacks",
        "POST",
        "2.1/jobs/create",
        {"name": "j", "tasks": [_task(job_cluster_key="nope")]},
    ),
    Case(
        "submit a run with node type and pool",
        "POST",
        "2.1/jobs/runs/submit",
        {
            "tasks": [
                _task(
                    new_cluster={
                        "spark_version": "15.4.x-scala2.12",
                        "node_type_id": "local",
                        "instance_pool_id": "x",
                    }
                )
            ]
        },
    ),
    Case(
        "create a job with a sql task",
        "POST",
        "2.1/jobs/create",
        {
            "name": "j",
            "tasks": [
                {"task_key": "q", "sql_task": {"file": {"path": "/x.sql"}, "warehouse_id": "w"}}
            ],
        },
    ),
    Case(
        "create a job with a condition of an unknown op",
        "POST",
        "2.1/jobs/create",
        {
            "name": "j",
            "tasks": [
                {"task_key": "c", "condition_task": {"op": "MATCHES", "left": "a", "right": "b"}}
            ],
        },
    ),
    Case(
        "create a job running a job that does not exist",
        "POST",
        "2.1/jobs/create",
        {"name": "j", "tasks": [{"task_key": "r", "run_job_task": {"job_id": 987654}}]},
    ),
    Case(
        "create a job with a for each task",
        "POST",
        "2.1/jobs/create",
        {
            "name": "j",
            "tasks": [
                {"task_key": "f", "for_each_task": {"inputs": "[1]", "task": _task("inner")}}
            ],
        },
    ),
    Case(
        "create a job with a jar task",
        "POST",
        "2.1/jobs/create",
        {"name": "j", "tasks": [{"task_key": "q", "spark_jar_task": {"main_class_name": "M"}}]},
    ),
    Case(
        "create a job with two task types",
        "POST",
        "2.1/jobs/create",
        {"name": "j", "tasks": [_task(spark_python_task={"python_file": "/x.py"})]},
    ),
    Case(
        "create a job with a python file from git",
        "POST",
        "2.1/jobs/create",
        {
            "name": "j",
            "tasks": [
                {"task_key": "p", "spark_python_task": {"python_file": "x.py", "source": "GIT"}}
            ],
        },
    ),
    Case(
        "create a job with a relative python file",
        "POST",
        "2.1/jobs/create",
        {"name": "j", "tasks": [{"task_key": "p", "spark_python_task": {"python_file": "x.py"}}]},
    ),
    Case(
        "create a job with a wheel task without its wheel",
        "POST",
        "2.1/jobs/create",
        {
            "name": "j",
            "tasks": [
                {"task_key": "w", "python_wheel_task": {"package_name": "p", "entry_point": "main"}}
            ],
        },
    ),
    Case(
        "repair a run that does not exist",
        "POST",
        "2.1/jobs/runs/repair",
        {"run_id": 987654, "rerun_all_failed_tasks": True},
        status=404,
        code=MISSING,
    ),
    Case(
        "get a secret of a scope that does not exist",
        "GET",
        "2.0/secrets/get",
        params={"scope": "nope", "key": "k"},
        status=404,
        code=MISSING,
    ),
    Case(
        "get a secret that does not exist",
        "GET",
        "2.0/secrets/get",
        params={"scope": "s", "key": "nope"},
        status=404,
        code=MISSING,
    ),
    Case(
        "put an ACL for nobody",
        "POST",
        "2.0/secrets/acls/put",
        {"scope": "s", "principal": "nobody@x", "permission": "READ"},
        status=404,
        code=MISSING,
    ),
    Case(
        "put an ACL of an unknown permission",
        "POST",
        "2.0/secrets/acls/put",
        {"scope": "s", "principal": "users", "permission": "OWN"},
    ),
    Case(
        "put an ACL on a scope that does not exist",
        "POST",
        "2.0/secrets/acls/put",
        {"scope": "nope", "principal": "users", "permission": "READ"},
        status=404,
        code=MISSING,
    ),
    Case(
        "get an ACL that does not exist",
        "GET",
        "2.0/secrets/acls/get",
        params={"scope": "s", "principal": "users"},
        status=404,
        code=MISSING,
    ),
    Case(
        "delete an ACL that does not exist",
        "POST",
        "2.0/secrets/acls/delete",
        {"scope": "s", "principal": "users"},
        status=404,
        code=MISSING,
    ),
    Case(
        "create a scope managed by someone else",
        "POST",
        "2.0/secrets/scopes/create",
        {"scope": "t", "initial_manage_principal": "admins"},
    ),
]

#: the Files API (Unity Catalog volumes): the seeded volume is /Volumes/main/default/v
V = "2.0/fs/files/Volumes/main/default/v"
D = "2.0/fs/directories/Volumes/main/default/v"
NOT_FOUND = "NOT_FOUND"
FILES = [
    Case(
        "upload to a volume that does not exist",
        "PUT",
        "2.0/fs/files/Volumes/main/default/nope/x",
        raw=b"x",
        status=404,
        code=NOT_FOUND,
    ),
    Case("upload outside /Volumes", "PUT", "2.0/fs/files/FileStore/x", raw=b"x"),
    Case("upload to a schema", "PUT", "2.0/fs/files/Volumes/main/default", raw=b"x"),
    Case("upload to the volume itself", "PUT", V, raw=b"x"),
    Case(
        "upload over a file without overwrite",
        "PUT",
        f"{V}/f.txt",
        raw=b"x",
        params={"overwrite": "false"},
        status=409,
        code="ALREADY_EXISTS",
    ),
    Case("upload onto a directory", "PUT", f"{V}/d", raw=b"x", status=409, code="ALREADY_EXISTS"),
    Case("upload below a file", "PUT", f"{V}/f.txt/x", raw=b"x", status=409, code="ALREADY_EXISTS"),
    Case("upload with a dot-dot segment", "PUT", f"{V}/%2E%2E/%2E%2E/x", raw=b"x"),
    Case("upload with invalid UTF-8", "PUT", f"{V}/%ff", raw=b"x"),
    Case("upload with a control character", "PUT", f"{V}/a%0Ab", raw=b"x"),
    Case(
        "upload with overwrite not a boolean",
        "PUT",
        f"{V}/n.txt",
        raw=b"x",
        params={"overwrite": "maybe"},
    ),
    Case("upload a path over 1024 bytes", "PUT", f"{V}/" + "n" * 1100, raw=b"x"),
    Case("delete a directory as a file", "DELETE", f"{V}/d", status=404, code=NOT_FOUND),
    Case("delete a directory that is not empty", "DELETE", f"{D}/d", code="DIRECTORY_NOT_EMPTY"),
    Case("delete the volume", "DELETE", D),
    Case("list with page_size 0", "GET", D, params={"page_size": "0"}),
    Case("list with a bad page_token", "GET", D, params={"page_token": "%%%"}),
    Case(
        "make a directory below a file", "PUT", f"{D}/f.txt/sub", status=409, code="ALREADY_EXISTS"
    ),
]

CASES = WORKSPACE + DBFS + JOBS + SECRETS + PERMISSIONS + HOSTILE + COMPUTE + FILES


def _id(case: Case) -> str:
    return f"{case.route.split('/')[1]}: {case.name}"[:120]


def test_the_table_has_at_least_40_cases_over_every_api() -> None:
    assert len(CASES) >= 40
    groups = (WORKSPACE, DBFS, JOBS, SECRETS, PERMISSIONS, HOSTILE, COMPUTE, FILES)
    assert all(len(group) >= 10 for group in groups)
    assert len({_id(c) for c in CASES}) == len(CASES)


def _call(ws: LocalWorkspace, method: str, route: str, body: Any = None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {ws.token}"}
    response = requests.request(
        method, f"{ws.url}/api/{route}", json=body, params=params, headers=headers, timeout=60
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorkspace]:
    """A workspace with a folder, a notebook, DBFS files, a job and a secret scope."""
    state = tmp_path_factory.mktemp("bad-input") / "state"
    ws = start_local_workspace(
        state,
        token=TOKEN,
        cluster_start_delay=0.1,
        executor=FakeExecutor(),
        clusters=(ClusterSpec(state="TERMINATED"),),
    )
    _call(ws, "POST", "2.0/workspace/mkdirs", {"path": "/Shared/a"})
    nb = {"path": "/Shared/a/nb", "language": "PYTHON", "content": NB}
    _call(ws, "POST", "2.0/workspace/import", nb)
    for name in ("f.txt", "g.txt"):
        _call(ws, "POST", "2.0/dbfs/put", {"path": f"/data/{name}", "contents": NB})
    # a volume (its folder in the DBFS root) with a file and a folder that is not empty
    _call(ws, "POST", "2.0/dbfs/put", {"path": "/Volumes/main/default/v/f.txt", "contents": NB})
    _call(ws, "POST", "2.0/dbfs/put", {"path": "/Volumes/main/default/v/d/g.txt", "contents": NB})
    _call(ws, "POST", "2.1/jobs/create", {"name": "job", "tasks": [_task()]})
    _call(ws, "POST", "2.0/secrets/scopes/create", {"scope": "s"})
    _call(ws, "POST", "2.0/secrets/put", {"scope": "s", "key": "k", "string_value": "v"})
    # a folder and a notebook that grant something already
    route = f"2.0/permissions/directories/{_object_id(ws, '/Shared/a')}"
    _call(ws, "PATCH", route, {"access_control_list": [USERS_EDIT]})
    route = f"2.0/permissions/notebooks/{_object_id(ws, '/Shared/a/nb')}"
    _call(ws, "PUT", route, {"access_control_list": [USERS_EDIT]})
    try:
        yield ws
    finally:
        ws.stop()


def snapshot(state_dir: Path) -> tuple[dict[str, str], list[str]]:
    """Every file and folder under the state dir (content hashes) and the database's dump."""
    files: dict[str, str] = {}
    for path in sorted(state_dir.rglob("*")):
        rel = path.relative_to(state_dir).as_posix()
        if rel.startswith("state.db"):
            continue
        files[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    db = sqlite3.connect(f"file:{state_dir / 'state.db'}?mode=ro", uri=True)
    try:
        dump = list(db.iterdump())
    finally:
        db.close()
    return files, dump


def _object_id(ws: LocalWorkspace, path: str) -> str:
    row = ws.store.get_object(path)
    assert row is not None, path
    return str(row.object_id)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_is_4xx_and_changes_nothing(seeded: LocalWorkspace, case: Case) -> None:
    before = snapshot(seeded.store.state_dir)
    headers = {"Authorization": f"Bearer {seeded.token}"}
    route = re.sub(r"\{(/[^}]*)\}", lambda m: _object_id(seeded, m[1]), case.route)
    url = f"{seeded.url}/api/{route}"
    if case.raw is not None:
        headers["Content-Type"] = "application/json"
        response = requests.request(
            case.method, url, data=case.raw, params=case.params, headers=headers, timeout=60
        )
    elif case.files is not None:
        response = requests.request(
            case.method, url, data=case.body, files=case.files, headers=headers, timeout=60
        )
    else:
        response = requests.request(
            case.method, url, json=case.body, params=case.params, headers=headers, timeout=60
        )
    body = response.json()
    assert (response.status_code, body.get("error_code")) == (case.status, case.code), body
    assert set(body) == {"error_code", "message"}
    assert len(json.dumps(body)) < 2000  # the message quotes a bounded part of the input
    assert snapshot(seeded.store.state_dir) == before
