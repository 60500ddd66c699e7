"""Bad input to the Repos and Git Credentials APIs, to ``git_source`` in job settings and to
``/local-admin/git-sources``: Databricks' 4xx answer, and nothing changes.

As in test_bad_input.py: each case is one HTTP request to a workspace holding a folder, a Git
folder, a Git credential and a registered source; the answer's status and ``error_code`` are
checked, and every file under the state dir and a dump of the database are what they were
(a refused clone leaves no folder, repository or object behind)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.local.server import LocalWorkspace, start_local_workspace
from tests.fakes import FakeExecutor
from tests.local.git_repos import make_repo

TOKEN = "git-bad-input-token"
BAD = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
USER = "local@localhost"
#: placeholders a case's body may hold: the seeded repository's path, the Git folder's id
SRC = "<src>"
REPO_ID = "<repo>"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # after the host: /api/2.0/... or /local-admin/...
    body: Any = None
    status: int = 400
    code: str = BAD
    params: dict[str, Any] = field(default_factory=dict)


def _repo(**fields: Any) -> dict[str, Any]:
    return {"url": SRC, "provider": "gitHub", "path": f"/Repos/{USER}/new", **fields}


def _job(git_source: Any, **task: Any) -> dict[str, Any]:
    notebook = {"notebook_path": "notebooks/use_package", **task}
    return {
        "name": "job",
        "git_source": git_source,
        "tasks": [{"task_key": "t", "notebook_task": notebook}],
    }


_GIT = {"git_url": SRC, "git_provider": "gitHub", "git_branch": "main"}

REPOS = [
    Case("create without url", "POST", "/api/2.0/repos", {"provider": "gitHub"}),
    Case("create url not a string", "POST", "/api/2.0/repos", _repo(url=12)),
    Case("create unknown provider", "POST", "/api/2.0/repos", _repo(provider="svn")),
    Case("create no provider for a local path", "POST", "/api/2.0/repos", _repo(provider=None)),
    Case("create relative path", "POST", "/api/2.0/repos", _repo(path="Repos/x/y")),
    Case("create two levels in /Repos", "POST", "/api/2.0/repos", _repo(path="/Repos/x")),
    Case("create four levels in /Repos", "POST", "/api/2.0/repos", _repo(path="/Repos/a/b/c")),
    Case(
        "create in the snapshots' folder",
        "POST",
        "/api/2.0/repos",
        _repo(path="/Repos/.internal/x"),
    ),
    Case("create on a folder", "POST", "/api/2.0/repos", _repo(path="/Shared/a"), code=EXISTS),
    Case(
        "create without its parent",
        "POST",
        "/api/2.0/repos",
        _repo(path="/Shared/missing/new"),
        status=404,
        code=MISSING,
    ),
    Case(
        "create in a Git folder",
        "POST",
        "/api/2.0/repos",
        _repo(path=f"/Repos/{USER}/proj/notebooks/new"),
    ),
    Case(
        "create from an unknown URL",
        "POST",
        "/api/2.0/repos",
        _repo(url="https://github.com/org/unknown"),
    ),
    Case("create from a folder not a repository", "POST", "/api/2.0/repos", _repo(url="/")),
    Case(
        "create with a wildcard pattern",
        "POST",
        "/api/2.0/repos",
        _repo(sparse_checkout={"patterns": ["*.py"]}),
    ),
    Case(
        "create with sparse_checkout not an object",
        "POST",
        "/api/2.0/repos",
        _repo(sparse_checkout=["notebooks"]),
    ),
    Case(
        "create with an unknown credential",
        "POST",
        "/api/2.0/repos",
        _repo(git_credential_id=999),
        status=404,
        code=MISSING,
    ),
    Case("get an id not a number", "GET", "/api/2.0/repos/abc"),
    Case("get an unknown id", "GET", "/api/2.0/repos/999999", status=404, code=MISSING),
    Case(
        "update an unknown id",
        "PATCH",
        "/api/2.0/repos/999999",
        {"branch": "main"},
        status=404,
        code=MISSING,
    ),
    Case(
        "update to a branch and a tag",
        "PATCH",
        f"/api/2.0/repos/{REPO_ID}",
        {"branch": "main", "tag": "v1"},
    ),
    Case("update to a missing branch", "PATCH", f"/api/2.0/repos/{REPO_ID}", {"branch": "nope"}),
    Case("update to a missing tag", "PATCH", f"/api/2.0/repos/{REPO_ID}", {"tag": "nope"}),
    Case(
        "update sparse patterns of a folder without them",
        "PATCH",
        f"/api/2.0/repos/{REPO_ID}",
        {"sparse_checkout": {"patterns": ["notebooks"]}},
    ),
    Case("delete an unknown id", "DELETE", "/api/2.0/repos/999999", status=404, code=MISSING),
    Case("list with a bad page token", "GET", "/api/2.0/repos", params={"next_page_token": "%%"}),
]

CREDENTIALS = [
    Case("create without provider", "POST", "/api/2.0/git-credentials", {"git_username": "x"}),
    Case("create unknown provider", "POST", "/api/2.0/git-credentials", {"git_provider": "svn"}),
    Case(
        "create token not a string",
        "POST",
        "/api/2.0/git-credentials",
        {"git_provider": "gitHub", "personal_access_token": ["x"]},
    ),
    Case(
        "create user name over 1024 characters",
        "POST",
        "/api/2.0/git-credentials",
        {"git_provider": "gitHub", "git_username": "u" * 1025},
    ),
    Case(
        "create for a service principal",
        "POST",
        "/api/2.0/git-credentials",
        {"git_provider": "gitHub", "principal_id": 5},
        status=404,
        code=MISSING,
    ),
    Case("get an id not a number", "GET", "/api/2.0/git-credentials/x"),
    Case("get an unknown id", "GET", "/api/2.0/git-credentials/999", status=404, code=MISSING),
    Case(
        "update an unknown id",
        "PATCH",
        "/api/2.0/git-credentials/999",
        {"git_provider": "gitHub"},
        status=404,
        code=MISSING,
    ),
    Case(
        "update without provider",
        "PATCH",
        "/api/2.0/git-credentials/1",
        {"git_username": "x"},
    ),
    Case(
        "delete an unknown id",
        "DELETE",
        "/api/2.0/git-credentials/999",
        status=404,
        code=MISSING,
    ),
]

JOBS = [
    Case("git_source not an object", "POST", "/api/2.1/jobs/create", _job("x")),
    Case("git_source without url", "POST", "/api/2.1/jobs/create", _job({**_GIT, "git_url": ""})),
    Case(
        "git_source unknown provider",
        "POST",
        "/api/2.1/jobs/create",
        _job({**_GIT, "git_provider": "svn"}),
    ),
    Case(
        "git_source without reference",
        "POST",
        "/api/2.1/jobs/create",
        _job({k: v for k, v in _GIT.items() if k != "git_branch"}),
    ),
    Case(
        "git_source branch and commit",
        "POST",
        "/api/2.1/jobs/create",
        _job({**_GIT, "git_commit": "abc123"}),
    ),
    Case(
        "git_source empty tag",
        "POST",
        "/api/2.1/jobs/create",
        _job({k: v for k, v in _GIT.items() if k != "git_branch"} | {"git_tag": ""}),
    ),
    Case(
        "git_source bad sparse pattern",
        "POST",
        "/api/2.1/jobs/create",
        _job({**_GIT, "sparse_checkout": {"patterns": ["../x"]}}),
    ),
    Case(
        "git task with an absolute path",
        "POST",
        "/api/2.1/jobs/create",
        _job(_GIT, notebook_path="/Shared/a/nb"),
    ),
    Case(
        "task source neither GIT nor WORKSPACE",
        "POST",
        "/api/2.1/jobs/create",
        _job(_GIT, source="S3"),
    ),
    Case(
        "submit a GIT task without git_source",
        "POST",
        "/api/2.1/jobs/runs/submit",
        {
            "run_name": "r",
            "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "nb", "source": "GIT"}}],
        },
    ),
]

ADMIN = [
    Case("register without url", "POST", "/local-admin/git-sources", {"path": SRC}),
    Case("register a relative path", "POST", "/local-admin/git-sources", {"url": "u", "path": "x"}),
    Case(
        "register a folder not a repository",
        "POST",
        "/local-admin/git-sources",
        {"url": "https://github.com/o/r", "path": "/"},
    ),
]

CASES = REPOS + CREDENTIALS + JOBS + ADMIN


def _id(case: Case) -> str:
    return f"{case.path.split('/')[3 if case.path.startswith('/api') else 2]}: {case.name}"


def test_the_table_covers_every_git_api() -> None:
    assert all(len(group) >= 3 for group in (REPOS, CREDENTIALS, JOBS, ADMIN))
    assert len({_id(c) for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalWorkspace, Path]]:
    """A workspace with a folder, a Git folder, a Git credential and a registered source."""
    root = tmp_path_factory.mktemp("git-bad-input")
    src = make_repo(root)
    ws = start_local_workspace(
        root / "state", token=TOKEN, cluster_start_delay=0.1, executor=FakeExecutor()
    )
    headers = {"Authorization": f"Bearer {ws.token}"}
    for path, body in (
        ("/api/2.0/workspace/mkdirs", {"path": "/Shared/a"}),
        ("/api/2.0/repos", {"url": str(src), "provider": "gitHub", "path": f"/Repos/{USER}/proj"}),
        ("/api/2.0/git-credentials", {"git_provider": "gitHub", "git_username": "me"}),
        ("/local-admin/git-sources", {"url": "https://github.com/o/r", "path": str(src)}),
    ):
        requests.post(ws.url + path, json=body, headers=headers, timeout=60).raise_for_status()
    try:
        yield ws, src
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


def _fill(value: Any, src: Path, repo_id: int) -> Any:
    if isinstance(value, str):
        return value.replace(SRC, str(src)).replace(REPO_ID, str(repo_id))
    if isinstance(value, dict):
        return {k: _fill(v, src, repo_id) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_fill(v, src, repo_id) for v in value]
    return value


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_is_4xx_and_changes_nothing(
    seeded: tuple[LocalWorkspace, Path], case: Case
) -> None:
    ws, src = seeded
    repo = ws.git_store.repo_at(f"/Repos/{USER}/proj")
    assert repo is not None
    before = snapshot(ws.store.state_dir)
    response = requests.request(
        case.method,
        ws.url + _fill(case.path, src, repo.repo_id),
        json=_fill(case.body, src, repo.repo_id),
        params=case.params,
        headers={"Authorization": f"Bearer {ws.token}"},
        timeout=60,
    )
    body = response.json()
    assert (response.status_code, body.get("error_code")) == (case.status, case.code), body
    assert set(body) == {"error_code", "message"}
    assert snapshot(ws.store.state_dir) == before
