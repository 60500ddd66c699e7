"""Generated bad requests to every route of the local workspace: never a 5xx, never a hang,
never a change when refused.

Hypothesis builds each request from the routes the workspace's router holds (so a route
added later is covered without touching this file; a page pattern needs a sample path here,
which the first test checks): the route's method or another, a version it has or not, query
parameters and JSON bodies made of the fields the APIs read, with hostile values (integers
beyond 64 bits, NaN and Infinity, lone surrogates, nesting thousands deep, paths of thousands
of bytes, control characters), or bodies that are not JSON at all. Each request goes over a
new HTTP connection with a timeout (a hang fails the test). For every answer: its status is
under 500 (but the one 500 the service itself answers, modifying ``/Shared``'s permissions),
an API error is Databricks' JSON body, and an answer of 400 or more left the state dir as it
was (every file under its API-managed folders, and a dump of the database). A request that
succeeded (some generated ones are valid) becomes the new baseline once its runs have ended.

Derandomized, so CI runs the same examples each time; ``HOSTILE_EXAMPLES`` sets how many
(default 800: about 15 s on 2 cores), ``HOSTILE_RANDOM=1`` explores new ones.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import http.client
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from tests.conftest import TOKEN
from tests.fakes import FakeExecutor

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "800"))
PATIENCE = 60.0  # seconds an answer may take before the request counts as hung
#: the folders of the state dir the APIs change (spark/, procs/, kernels/ are the runtime's)
STATE_FOLDERS = ("workspace", "dbfs", "runs", "tmp")

#: a sample path for each page pattern (ids that exist, ids that do not)
PAGE_PATHS = {
    r"/": ["/"],
    r"/jobs/?": ["/jobs", "/jobs/"],
    r"/jobs/(?P<job_id>[0-9]+)/?": ["/jobs/{id}", "/jobs/1"],
    r"/(?:jobs/(?P<job_id>[0-9]+)/)?runs/(?P<run_id>[0-9]+)/?": ["/runs/{id}", "/jobs/1/runs/{id}"],
    r"/(?:jobs/(?P<job_id>[0-9]+)/)?runs/(?P<run_id>[0-9]+)/notebook": ["/runs/{id}/notebook"],
    r"/static/ui\.css": ["/static/ui.css"],
    r"/favicon\.ico": ["/favicon.ico"],
    r"/\.well-known/databricks-config": ["/.well-known/databricks-config"],
    r"/local-admin/counters": ["/local-admin/counters"],
    r"/local-admin/counters/reset": ["/local-admin/counters/reset"],
    r"/local-admin/faults": ["/local-admin/faults"],
    r"/ml/experiments(?P<rest>/[A-Za-z0-9/_-]*)?": ["/ml/experiments/{id}/runs/ab"],
    r"/ml/models/(?P<name>[^/]+)(?:/versions/(?P<version>[0-9]{1,19}))?/?": [
        "/ml/models/m%2Fx/versions/{id}",
        "/ml/models/..",
    ],
    (
        r"/explore/data/models/(?P<catalog>[^/]+)/(?P<schema>[^/]+)/(?P<model>[^/]+)"
        r"(?:/version/(?P<version>[0-9]{1,19}))?/?"
    ): ["/explore/data/models/a/b/c/version/{id}", "/explore/data/models/a/b/%00"],
    r"/mlflow/?": ["/mlflow/", "/mlflow"],
    r"/mlflow/(?P<rest>.+)": [
        "/mlflow/static-files/x.js",
        "/mlflow/ajax-api/2.0/mlflow/runs/search",
        "/mlflow/ajax-api/2.0/mlflow/runs/delete",
        "/mlflow/get-artifact",
    ],
    r"/local-mlflow-artifacts/(?P<target>[^?]+)": [
        "/local-mlflow-artifacts/runs/{id}/a.txt",
        "/local-mlflow-artifacts/logged_models/m-{id}/../x",
    ],
    r"/local-admin/runs/test-counts": ["/local-admin/runs/test-counts"],
    r"/local-admin/git-sources": ["/local-admin/git-sources"],
}

#: the fields the handlers read (query parameters and body fields), and a few they do not
FIELDS = (
    "path", "format", "language", "content", "overwrite", "recursive", "direct_download",
    "contents", "data", "handle", "offset", "length", "source_path", "destination_path",
    "job_id", "run_id", "name", "tasks", "new_settings", "fields_to_remove", "notebook_params",
    "job_parameters", "only", "idempotency_token", "limit", "page_token", "expand_tasks",
    "active_only", "completed_only", "run_type", "views_to_export", "all_queued_runs",
    "scope", "key", "string_value", "bytes_value", "cluster_id", "access_control_list",
    "attributes", "max_concurrent_runs", "timeout_seconds", "parameters", "queue", "tags",
    "run_name", "description", "tests", "failures", "failed", "latency_ms", "unknown", "",
    "task_key", "notebook_task", "depends_on", "run_if", "existing_cluster_id", "libraries",
    "notebook_path", "base_parameters", "url", "provider", "branch", "tag", "git_provider",
    "git_username", "personal_access_token", "sparse_checkout", "git_source",
)  # fmt: skip

NB = "IyBEYXRhYnJpY2tzIG5vdGVib29rIHNvdXJjZQpwcmludCgxKQo="
TASK = {
    "task_key": "t",
    "notebook_task": {"notebook_path": "/Shared/a/nb", "base_parameters": {"a": "b"}},
    "depends_on": [],
    "run_if": "ALL_SUCCESS",
    "timeout_seconds": 0,
    "libraries": [],
}
ACL = [{"group_name": "users", "permission_level": "CAN_READ"}]
#: a valid request per route (the seeded objects' ids), which the generator breaks a little:
#: so that generated requests get past the first check of each handler
TEMPLATES: dict[str, dict[str, object]] = {
    "workspace/mkdirs": {"path": "/Shared/a/new"},
    "workspace/import": {"path": "/Shared/a/imp", "language": "PYTHON", "content": NB},
    "workspace/export": {"path": "/Shared/a/nb", "format": "SOURCE"},
    "workspace/list": {"path": "/Shared"},
    "workspace/get-status": {"path": "/Shared/a"},
    "workspace/delete": {"path": "/Shared/a/doomed"},
    "dbfs/put": {"path": "/data/g.txt", "contents": NB},
    "dbfs/create": {"path": "/data/h.txt"},
    "dbfs/add-block": {"handle": 1, "data": NB},
    "dbfs/close": {"handle": 1},
    "dbfs/read": {"path": "/data/f.txt", "offset": 0, "length": 10},
    "dbfs/get-status": {"path": "/data/f.txt"},
    "dbfs/list": {"path": "/data"},
    "dbfs/mkdirs": {"path": "/data/sub"},
    "dbfs/delete": {"path": "/data/doomed"},
    "dbfs/move": {"source_path": "/data/movable", "destination_path": "/data/moved"},
    "jobs/create": {"name": "j", "tasks": [TASK, {**TASK, "task_key": "u"}]},
    "jobs/get": {"job_id": 1},
    "jobs/list": {"limit": 5, "expand_tasks": True, "name": "job"},
    "jobs/reset": {"job_id": 2, "new_settings": {"name": "j2", "tasks": [TASK]}},
    "jobs/update": {"job_id": 2, "new_settings": {"tasks": [TASK]}, "fields_to_remove": ["tags"]},
    "jobs/delete": {"job_id": 2},
    "jobs/run-now": {"job_id": 1, "notebook_params": {"a": "b"}, "only": ["t"]},
    "jobs/runs/submit": {"run_name": "r", "tasks": [TASK], "idempotency_token": "x"},
    "jobs/runs/get": {"run_id": 1},
    "jobs/runs/list": {"job_id": 1, "limit": 2, "run_type": "JOB_RUN"},
    "jobs/runs/cancel": {"run_id": 1},
    "jobs/runs/cancel-all": {"job_id": 1},
    "jobs/runs/delete": {"run_id": 3},
    "jobs/runs/get-output": {"run_id": 2},
    "jobs/runs/export": {"run_id": 2, "views_to_export": "CODE"},
    "secrets/scopes/create": {"scope": "s3"},
    "secrets/scopes/delete": {"scope": "s2"},
    "secrets/put": {"scope": "s", "key": "k2", "string_value": "v"},
    "secrets/list": {"scope": "s"},
    "secrets/delete": {"scope": "s2", "key": "k2"},
    "clusters/get": {"cluster_id": "0000-000000-local"},
    "clusters/start": {"cluster_id": "0000-000000-local"},
    "preview/scim/v2/Me": {"attributes": "userName"},
    "permissions/": {"access_control_list": ACL},
    "/local-admin/runs/test-counts": {"run_id": 1, "tests": 2, "failures": 1, "errors": 0},
    "/local-admin/faults": {"latency_ms": 0},
    "/local-admin/git-sources": {"url": "https://github.com/org/repo.git", "path": "/nowhere"},
    "repos": {"url": "https://github.com/org/repo.git", "provider": "gitHub", "path": "/Repos/u/r"},
    "git-credentials": {
        "git_provider": "gitHub",
        "git_username": "u",
        "personal_access_token": "x",
    },
}


class Raw(str):
    """JSON text sent as it is (what ``json.dumps`` cannot write: nesting thousands deep)."""


def encode(value: object) -> str:
    """JSON text of ``value``; NaN and Infinity as Python writes them, surrogates escaped."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    return json.dumps(value)


BIG = [2**63, -(2**63) - 1, 2**64, int("7" * 4000), float("nan"), float("inf"), -float("inf")]
NUMBERS = [*BIG, -1, 0, 1.5, True, None, "1", "", [], {}]
PATHS = [
    "\ud800", "/Shared/a/\udc00", "/data/\udfff", "", "/", "relative", "/Shared/../x",
    "/Shared/a/nb/under", "/data/f.txt/under", "/a\x00b", "/a\x1fb", "dbfs:/data/f.txt",
    "/Workspace/Shared/a", "/" + "n" * 256, "/Shared/" + "/".join(["p" * 200] * 20),
    "/data/" + "/".join(["d" * 100] * 10), "/" + "/a" * 3000, 5, None, ["/x"],
]  # fmt: skip
TEXTS = ["\ud800", "a\udc00b", "é" * 2049, "x" * 4097, "", " ", "\x00", "<b>", 5, None, ["x"]]
#: hostile values by the field they are put in (the rest: any of these)
HOSTILE_FOR: dict[str, list[object]] = {
    "path": PATHS, "source_path": PATHS, "destination_path": PATHS, "notebook_path": PATHS,
    "job_id": NUMBERS, "run_id": NUMBERS, "handle": NUMBERS, "offset": NUMBERS,
    "length": NUMBERS, "limit": NUMBERS, "max_concurrent_runs": NUMBERS,
    "timeout_seconds": NUMBERS, "tests": NUMBERS, "failures": NUMBERS, "latency_ms": NUMBERS,
    "depends_on": [
        [{"task_key": ["t"]}], [{"task_key": {"k": 1}}], [{"task_key": None}], ["t"], [None],
        [{"task_key": "nope"}], [{"task_key": "t"}], [{"task_key": "u"}], "t", {},
    ],
    "task_key": ["", "a b", "k" * 101, ["t"], {"k": 1}, None, 5, "\ud800", "t"],
    "tasks": [
        "x", [], [1], [None], [TASK, TASK], [{"task_key": "t"}],
        [{**TASK, "task_key": f"c{i}", "depends_on": [{"task_key": f"c{(i + 1) % 3}"}]}
         for i in range(3)],
        [{**TASK, "task_key": f"r{i}", "depends_on": [{"task_key": f"r{i + 1}"}] if i < 99 else []}
         for i in range(100)],
    ],
    "content": ["%%%", base64.b64encode(b"# Databricks notebook source\n\xff\xfe").decode(),
                base64.b64encode(b"\xff\xfe\x00").decode(), "", 5, None],
    "format": ["JUPYTER", "HTML", "DBC", "AUTO", "RAW", "source", "", 5, None],
    "language": ["COBOL", "python", "", 5, None, "R", "SQL"],
    "notebook_params": ["x", [], {"a": {"b": 1}}, {"\ud800": "v"}, {"a": None}],
    "base_parameters": ["x", [], {"a": {"b": 1}}, {"\ud800": "v"}],
    "new_settings": ["x", [], {"tasks": "x"}, {"name": "\ud800"}, {"tasks": [{"task_key": 1}]}],
    "notebook_task": ["x", [], {}, {"notebook_path": 5}, {"notebook_path": "/x", "source": "GIT"}],
    "access_control_list": [
        "x", ["users"], [{"group_name": ["x"], "permission_level": "CAN_READ"}],
        [{"user_name": "x\ud800", "permission_level": "CAN_READ"}], [{"permission_level": 5}],
    ],
    "only": ["t", [1], [["t"]], ["nope"], None],
    "fields_to_remove": ["tags", [1], ["tasks/\ud800"], ["tasks/nope"], [None]],
    "run_if": ["SOMETIMES", "", 5, ["ALL_DONE"], None],
    "name": TEXTS, "run_name": TEXTS, "description": TEXTS, "scope": TEXTS, "key": TEXTS,
    "string_value": TEXTS, "idempotency_token": TEXTS, "cluster_id": TEXTS,
    "overwrite": ["maybe", 2, [], "TRUE", None], "recursive": ["maybe", 2, [], None],
}  # fmt: skip
ANY = [v for values in HOSTILE_FOR.values() for v in values] + [
    Raw("[" * 5000 + "]" * 5000),
    Raw("[" * 65 + "]" * 65),
    Raw('{"a":' * 70 + "1" + "}" * 70),
]
DEEP = Raw("[" * 5000 + "]" * 5000)


def _hostile(name: str) -> st.SearchStrategy[object]:
    """A value for the field ``name`` (a copy: a later change must not change the tables)."""
    own = HOSTILE_FOR.get(name)
    general = st.sampled_from(ANY)
    chosen = st.one_of(st.sampled_from(own), st.sampled_from(own), general) if own else general
    return chosen.map(copy.deepcopy)


def _nodes(doc: object) -> list[tuple[object, object, str]]:
    """Every (container, key, field name) of a document, depth first."""
    found: list[tuple[object, object, str]] = []
    stack: list[tuple[object, str]] = [(doc, "")]
    while stack:
        item, name = stack.pop()
        if isinstance(item, dict) and not isinstance(item, Raw):
            for key, child in item.items():
                found.append((item, key, key))
                stack.append((child, key))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                found.append((item, index, name))
                stack.append((child, name))
    return found


@st.composite
def mutated(draw: st.DrawFn, template: dict[str, object]) -> dict[str, object]:
    """``template`` with one to three changes at any depth: a value replaced by a hostile one
    for its field, a field added, a field removed."""
    doc = copy.deepcopy(template)
    for _ in range(draw(st.integers(1, 3))):
        nodes = _nodes(doc)
        action = draw(st.integers(0, 9))
        if action < 6 and nodes:
            container, key, name = draw(st.sampled_from(nodes))
            container[key] = draw(_hostile(name))  # type: ignore[index]
        elif action < 9:
            dicts = [doc] + [c[k] for c, k, _ in nodes if isinstance(c[k], dict)]  # type: ignore[index]
            target = draw(st.sampled_from(dicts))
            name = draw(st.sampled_from(FIELDS))
            target[name] = draw(_hostile(name))
        elif nodes:
            container, key, _ = draw(st.sampled_from(nodes))
            del container[key]  # type: ignore[attr-defined]
    return doc


_bodies = st.one_of(
    st.sampled_from(ANY).map(encode),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["", "{", "{}", "[]", "null", "NaN", '"\\ud800"', "{'a': 1}"]),
)
_raw_query = st.sampled_from(["", "&path=%ED%A0%80", "&path=%FF%FE", "&job_id=%00", "&run_id=1e3"])
_content_types = st.sampled_from(
    [
        "application/json",
        "text/json",
        "multipart/form-data; boundary=x",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        None,
    ]
)
_methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
_versions = st.sampled_from(["2.0", "2.1", "2.2", "1.2", "3.0"])


# --- the workspace and its state ----------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalWorkspace]:
    """A workspace with folders, notebooks, DBFS files, jobs, runs and secret scopes: those
    the templates change or delete are their own (``doomed``, job 2, run 3, scope s2)."""
    state = tmp_path_factory.mktemp("hostile") / "state"
    ws = start_local_workspace(state, token=TOKEN, cluster_start_delay=0.0, executor=FakeExecutor())
    for route, body in (
        ("2.0/workspace/mkdirs", {"path": "/Shared/a"}),
        ("2.0/workspace/import", {"path": "/Shared/a/nb", "language": "PYTHON", "content": NB}),
        ("2.0/workspace/import", {"path": "/Shared/a/doomed", "language": "R", "content": NB}),
        ("2.0/dbfs/put", {"path": "/data/f.txt", "contents": NB}),
        ("2.0/dbfs/put", {"path": "/data/doomed", "contents": NB}),
        ("2.0/dbfs/put", {"path": "/data/movable", "contents": NB}),
        ("2.1/jobs/create", {"name": "job", "tasks": [TASK]}),
        ("2.1/jobs/create", {"name": "doomed", "tasks": [TASK]}),
        ("2.1/jobs/run-now", {"job_id": 1}),
        ("2.1/jobs/run-now", {"job_id": 1}),
        ("2.0/secrets/scopes/create", {"scope": "s"}),
        ("2.0/secrets/put", {"scope": "s", "key": "k", "string_value": "v"}),
        ("2.0/secrets/scopes/create", {"scope": "s2"}),
        ("2.0/secrets/put", {"scope": "s2", "key": "k2", "string_value": "v2"}),
    ):
        status, answer = _send(ws, "POST", f"/api/{route}", json.dumps(body), "application/json")
        assert status == 200, (route, answer)
    _quiet(ws)
    try:
        yield ws
    finally:
        ws.stop()


def _send(
    ws: LocalWorkspace, method: str, target: str, body: str | None, content_type: str | None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", ws.port, timeout=PATIENCE)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        data = body.encode("utf-8", "surrogatepass") if body is not None else None
        conn.request(method, target, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _quiet(ws: LocalWorkspace) -> None:
    """Wait until no run is active: a started run changes the state as it goes."""
    deadline = time.monotonic() + PATIENCE
    while ws.store.active_run_ids():
        assert time.monotonic() < deadline, "runs did not end"
        time.sleep(0.02)


def snapshot(state_dir: Path) -> tuple[dict[str, str], list[str]]:
    files: dict[str, str] = {}
    for folder in STATE_FOLDERS:
        for path in sorted((state_dir / folder).rglob("*")):
            rel = path.relative_to(state_dir).as_posix()
            if path.is_symlink() or not path.is_file():
                files[rel] = "dir" if path.is_dir() else "other"
            else:
                files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    db = sqlite3.connect(f"file:{state_dir / 'state.db'}?mode=ro", uri=True)
    try:
        dump = list(db.iterdump())
    finally:
        db.close()
    return files, dump


# --- the requests -------------------------------------------------------------------------------


def test_every_page_pattern_has_sample_paths(seeded: LocalWorkspace) -> None:
    for method, pattern in seeded.router.plain_routes():
        samples = PAGE_PATHS.get(pattern, [])
        assert samples, f"add sample paths for {method} {pattern} to PAGE_PATHS"
        for sample in samples:
            assert re.fullmatch(pattern, sample.format(id=1)), (pattern, sample)


def _template(route: str) -> dict[str, object]:
    for key, fields in TEMPLATES.items():
        if route == key or (key.endswith("/") and route.startswith(key)):
            return dict(fields)
    return {}


def _weight(route: str) -> int:
    return 1 + len(_nodes(_template(route))) // 3


def _query_text(value: object) -> str:
    text = value if isinstance(value, str) else encode(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


_NOT_GENERATED = ("mlflow/", "fs/")


@st.composite
def requests_to(draw: st.DrawFn, ws: LocalWorkspace) -> tuple[str, str, str | None, str | None]:
    """(method, target, body, content type) of one generated request."""
    # MLflow's routes are MLflow's tracking server's, which the workspace starts on the first
    # of them (seconds of CPU) and whose answers to bad input are its own; the Files API is a
    # documented 501 (docs/local-workspace.md, MLflow). tests/local/test_mlflow.py has both.
    api = [r for r in ws.router.api_routes() if not r[1].startswith(_NOT_GENERATED)]
    pages = ws.router.plain_routes()
    kind = draw(st.sampled_from(["api"] * 6 + ["page", "unknown"]))
    if kind == "api":
        # a route whose requests have more parts is drawn more often: more to break
        weighted = [r for r in sorted(api, key=str) for _ in range(_weight(r[1]))]
        method, route, versions = draw(st.sampled_from(weighted))
        template_route = route
        if route.endswith("/"):  # a prefix route: the object type and id follow
            kind_name = draw(st.sampled_from(["directories", "notebooks", "clusters", "x-y"]))
            ident = draw(st.sampled_from(["0", "1", "2", "3", "4", str(2**63), "%ED%A0%80", "1e3"]))
            levels = draw(st.sampled_from(["", "", "/permissionLevels", "/x"]))
            route = f"{route}{kind_name}/{ident}{levels}"
        wrong_version = draw(st.integers(0, 5)) == 0
        version = draw(_versions if wrong_version else st.sampled_from(sorted(versions)))
        path = f"/api/{version}/{route}"
    elif kind == "page":
        method, pattern = draw(st.sampled_from(sorted(pages)))
        template_route = pattern.replace("\\", "")
        ident = draw(st.sampled_from(["1", "2", "3", "4", str(2**63), "9" * 5000]))
        path = draw(st.sampled_from(PAGE_PATHS.get(pattern, ["/"]))).format(id=ident)
    else:
        method, template_route = "GET", ""
        path = draw(st.sampled_from(["/api/2.0/", "/api/x/y", "/api/2.0/../x", "/nope", "/%ff"]))
    if draw(st.integers(0, 5)) == 0:
        method = draw(_methods)
    doc = draw(mutated(_template(template_route)))
    content_type: str | None = "application/json"
    body: str | None = None
    if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        query = "&".join(f"{quote(k, safe='')}={_query_text(v)}" for k, v in doc.items())
        query += draw(_raw_query)
        path = f"{path}?{query.lstrip('&')}" if query.strip("&") else path
        if draw(st.integers(0, 5)) == 0:
            body = draw(_bodies)
    else:
        body = encode(doc) if draw(st.integers(0, 5)) else draw(_bodies)
    if draw(st.integers(0, 5)) == 0:
        content_type = draw(_content_types)
    return method, path, body, content_type


def _documented_500(target: str, status: int, answer: bytes) -> bool:
    """The service's own 500: modifying /Shared's permissions (docs/local-workspace.md)."""
    return status == 500 and b"Cannot modify permissions of directory" in answer


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("HOSTILE_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_generated_request_is_a_5xx_a_hang_or_a_change_when_refused(
    seeded: LocalWorkspace, data: st.DataObject
) -> None:
    method, target, body, content_type = data.draw(requests_to(seeded))
    before = snapshot(seeded.store.state_dir)
    faults = seeded.faults.settings
    status, answer = _send(seeded, method, target, body, content_type)
    if os.environ.get("HOSTILE_LOG"):
        with open(os.environ["HOSTILE_LOG"], "a") as log:
            log.write(f"{status} {method} {target[:60]} {answer[:80]!r}\n")
    assert status < 500 or _documented_500(target, status, answer), (status, answer[:500])
    if target.startswith("/api/") and status >= 400 and method != "HEAD":
        error = json.loads(answer)
        shapes = [{"error_code", "message"}]
        if "/preview/scim/" in target:  # SCIM's handlers answer RFC 7644's error, as the service
            shapes.append({"schemas", "detail", "status"})
        assert set(error) in shapes, error
    if status >= 400:
        assert snapshot(seeded.store.state_dir) == before, (method, target, status, answer[:300])
    else:
        seeded.faults.configure(faults)  # a valid /local-admin/faults must not slow the rest
        _quiet(seeded)
        for page in ("/", "/jobs"):  # what was accepted must not break a page (a name, a tag)
            shown, text = _send(seeded, "GET", page, None, None)
            assert shown == 200, (method, target, page, text[:300])
