"""Repos API of the local workspace through databricks-sdk: Git folders backed by real git
repositories (made with ``git init`` here), and how the Workspace API shows them."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import requests
from databricks.sdk.errors import NotFound, ResourceAlreadyExists
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.service.workspace import (
    ImportFormat,
    Language,
    ObjectType,
    SparseCheckout,
    SparseCheckoutUpdate,
)

from orchestrator.local.api import repos_api
from orchestrator.local.server import LocalWorkspace
from tests.conftest import sdk_client
from tests.local.git_repos import USE_PACKAGE, commit_file, git, make_repo

USER = "local@localhost"
HOME_REPOS = f"/Repos/{USER}"


@pytest.fixture
def w(ws: LocalWorkspace):  # type: ignore[no-untyped-def]
    return sdk_client(ws)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def listing(w, path: str) -> dict[str, tuple[ObjectType, Language | None]]:  # type: ignore[no-untyped-def]
    return {o.path: (o.object_type, o.language) for o in w.workspace.list(path)}


def test_create_checks_out_the_default_branch_and_shows_notebooks_without_extension(
    w, ws: LocalWorkspace, src: Path
) -> None:  # type: ignore[no-untyped-def]
    repo = w.repos.create(url=str(src), provider="github", path=f"{HOME_REPOS}/proj")
    assert (repo.path, repo.url, repo.provider) == (f"{HOME_REPOS}/proj", str(src), "gitHub")
    assert (repo.branch, repo.head_commit_id) == ("main", git(src, "rev-parse", "HEAD"))
    assert repo.sparse_checkout is None
    status = w.workspace.get_status(f"{HOME_REPOS}/proj")
    assert (status.object_type, status.object_id) == (ObjectType.REPO, repo.id)
    root = f"{HOME_REPOS}/proj"
    assert listing(w, root) == {
        f"{root}/data.csv": (ObjectType.FILE, None),
        f"{root}/my_package": (ObjectType.DIRECTORY, None),
        f"{root}/notebooks": (ObjectType.DIRECTORY, None),
        f"{root}/other": (ObjectType.DIRECTORY, None),
    }
    assert listing(w, f"{root}/notebooks") == {
        f"{root}/notebooks/helper": (ObjectType.NOTEBOOK, Language.PYTHON),
        f"{root}/notebooks/use_package": (ObjectType.NOTEBOOK, Language.PYTHON),
    }
    assert listing(w, f"{root}/my_package") == {
        f"{root}/my_package/__init__.py": (ObjectType.FILE, None)
    }
    exported = w.workspace.export(f"{root}/notebooks/use_package")
    assert base64.b64decode(exported.content).decode() == USE_PACKAGE
    assert w.workspace.download(f"{root}/data.csv").read() == b"a,b\n1,2\n"
    # the mirror holds the work tree as git wrote it, and no .git: the repository is elsewhere
    tree = ws.store.local_path(root)
    assert (tree / "notebooks" / "use_package.py").is_file()
    assert not (tree / ".git").exists()
    assert w.repos.get(repo.id) == w.repos.get(repo.id)
    assert w.repos.get(repo.id).head_commit_id == repo.head_commit_id


def test_update_to_a_branch_then_to_its_latest_commit_then_to_a_tag(w, src: Path) -> None:  # type: ignore[no-untyped-def]
    repo = w.repos.create(url=str(src), provider="gitHub", path=f"{HOME_REPOS}/proj")
    first = repo.head_commit_id
    git(src, "checkout", "-q", "-b", "feature")
    on_feature = commit_file(src, "feature.txt", "feature\n", "feature")
    git(src, "tag", "v1", first)
    w.repos.update(repo.id, branch="feature")
    got = w.repos.get(repo.id)
    assert (got.branch, got.head_commit_id) == ("feature", on_feature)
    assert f"{HOME_REPOS}/proj/feature.txt" in listing(w, f"{HOME_REPOS}/proj")
    # a commit pushed to the branch: an update without a branch pulls it
    newer = commit_file(src, "notebooks/new.py", "# Databricks notebook source\nx = 1\n", "nb")
    w.repos.update(repo.id)
    got = w.repos.get(repo.id)
    assert (got.branch, got.head_commit_id) == ("feature", newer)
    assert listing(w, f"{HOME_REPOS}/proj/notebooks")[f"{HOME_REPOS}/proj/notebooks/new"] == (
        ObjectType.NOTEBOOK,
        Language.PYTHON,
    )
    # a tag detaches HEAD: no branch, the tag's commit, the files of then
    w.repos.update(repo.id, tag="v1")
    got = w.repos.get(repo.id)
    assert (got.branch, got.head_commit_id) == (None, first)
    assert f"{HOME_REPOS}/proj/feature.txt" not in listing(w, f"{HOME_REPOS}/proj")
    with pytest.raises(DatabricksError, match="not on a branch"):
        w.repos.update(repo.id)
    with pytest.raises(DatabricksError, match="branch nope does not exist"):
        w.repos.update(repo.id, branch="nope")


def test_objects_that_stay_keep_their_ids_across_updates(w, src: Path) -> None:  # type: ignore[no-untyped-def]
    repo = w.repos.create(url=str(src), provider="gitHub", path=f"{HOME_REPOS}/proj")
    before = w.workspace.get_status(f"{HOME_REPOS}/proj/notebooks/helper").object_id
    commit_file(src, "more.txt", "more\n")
    w.repos.update(repo.id, branch="main")
    assert w.workspace.get_status(f"{HOME_REPOS}/proj/notebooks/helper").object_id == before


def test_sparse_checkout_keeps_the_cone_and_its_patterns_can_change(
    w, ws: LocalWorkspace, src: Path
) -> None:  # type: ignore[no-untyped-def]
    sparse = SparseCheckout(patterns=["notebooks"])
    repo = w.repos.create(
        url=str(src), provider="gitHub", path=f"{HOME_REPOS}/sparse", sparse_checkout=sparse
    )
    assert repo.sparse_checkout == sparse
    root = f"{HOME_REPOS}/sparse"
    assert set(listing(w, root)) == {f"{root}/data.csv", f"{root}/notebooks"}
    assert not ws.store.local_path(f"{root}/my_package").exists()
    w.repos.update(repo.id, sparse_checkout=SparseCheckoutUpdate(patterns=["my_package", "other"]))
    assert w.repos.get(repo.id).sparse_checkout == SparseCheckout(patterns=["my_package", "other"])
    assert set(listing(w, root)) == {f"{root}/data.csv", f"{root}/my_package", f"{root}/other"}
    # a Git folder made without sparse checkout cannot get it later
    plain = w.repos.create(url=str(src), provider="gitHub", path=f"{HOME_REPOS}/plain")
    with pytest.raises(DatabricksError, match="Sparse checkout is not enabled"):
        w.repos.update(plain.id, sparse_checkout=SparseCheckoutUpdate(patterns=["notebooks"]))
    with pytest.raises(DatabricksError, match="cone patterns are folders"):
        w.repos.update(repo.id, sparse_checkout=SparseCheckoutUpdate(patterns=["*.py"]))


def test_list_by_path_prefix_and_page_by_page(
    w, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(repos_api, "PAGE_SIZE", 2)
    w.workspace.mkdirs(f"/Users/{USER}/builds")
    paths = [f"{HOME_REPOS}/a", f"{HOME_REPOS}/b", f"{HOME_REPOS}/c", f"/Users/{USER}/builds/x"]
    for path in paths:
        w.repos.create(url=str(src), provider="gitHub", path=path)
    # no prefix (or "/", or "/Workspace"): the Git folders under /Repos, every page followed
    assert [r.path for r in w.repos.list()] == paths[:3]
    assert [r.path for r in w.repos.list(path_prefix="/Workspace")] == paths[:3]
    assert [r.path for r in w.repos.list(path_prefix=f"/Users/{USER}")] == paths[3:]
    assert [r.path for r in w.repos.list(path_prefix=f"/Workspace{HOME_REPOS}/b")] == [paths[1]]
    first = w.api_client.do("GET", "/api/2.0/repos")
    assert len(first["repos"]) == 2 and first["next_page_token"]
    second = w.api_client.do(
        "GET", "/api/2.0/repos", query={"next_page_token": first["next_page_token"]}
    )
    assert [r["path"] for r in second["repos"]] == [paths[2]]
    assert "next_page_token" not in second


def test_delete_removes_the_folder_its_objects_and_its_repository(
    w, ws: LocalWorkspace, src: Path
) -> None:  # type: ignore[no-untyped-def]
    repo = w.repos.create(url=str(src), provider="gitHub", path=f"{HOME_REPOS}/proj")
    git_dir = ws.git_store.git_dir(repo.id)
    assert git_dir.is_dir()
    w.repos.delete(repo.id)
    with pytest.raises(NotFound):
        w.repos.get(repo.id)
    with pytest.raises(NotFound):
        w.workspace.get_status(f"{HOME_REPOS}/proj")
    with pytest.raises(NotFound):
        w.workspace.get_status(f"{HOME_REPOS}/proj/notebooks/helper")
    assert not git_dir.exists()
    assert not ws.store.local_path(f"{HOME_REPOS}/proj").exists()
    assert list(w.repos.list()) == []


def test_workspace_delete_of_a_git_folder_deletes_it_as_a_folder(
    w, ws: LocalWorkspace, src: Path
) -> None:  # type: ignore[no-untyped-def]
    w.workspace.mkdirs(f"/Users/{USER}/builds/repo")
    repo = w.repos.create(url=str(src), provider="gitHub", path=f"/Users/{USER}/builds/repo/7")
    with pytest.raises(DatabricksError) as refused:
        w.workspace.delete(f"/Users/{USER}/builds/repo/7")
    assert refused.value.error_code == "DIRECTORY_NOT_EMPTY"
    w.workspace.delete(f"/Users/{USER}/builds", recursive=True)  # the folder that holds it
    with pytest.raises(NotFound):
        w.repos.get(repo.id)
    assert not ws.git_store.git_dir(repo.id).exists()
    assert list(w.repos.list(path_prefix="/Users")) == []


def test_a_notebook_imported_into_a_git_folder_is_written_with_its_extension(
    w, ws: LocalWorkspace, src: Path
) -> None:  # type: ignore[no-untyped-def]
    w.repos.create(url=str(src), provider="gitHub", path=f"{HOME_REPOS}/proj")
    target = f"{HOME_REPOS}/proj/notebooks/added"
    w.workspace.import_(
        target,
        content=base64.b64encode(b"print(1)\n").decode(),
        format=ImportFormat.SOURCE,
        language=Language.PYTHON,
    )
    assert w.workspace.get_status(target).object_type == ObjectType.NOTEBOOK
    on_disk = ws.store.local_path(target).with_name("added.py")
    assert on_disk.read_bytes().startswith(b"# Databricks notebook source\n")
    assert b"print(1)" in w.workspace.download(target).read()
    w.workspace.mkdirs(f"{HOME_REPOS}/proj/new/folder")  # folders can be made in a Git folder
    w.workspace.delete(target)
    assert not on_disk.exists()


def test_a_registered_url_is_cloned_from_its_local_checkout(
    w, ws: LocalWorkspace, src: Path
) -> None:  # type: ignore[no-untyped-def]
    url = "https://github.com/org/repo.git"
    answer = requests.post(
        f"{ws.url}/local-admin/git-sources",
        json={"url": "https://user:token@github.com/Org/Repo", "path": str(src)},
        headers={"Authorization": f"Bearer {ws.token}"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json() == {"url": "https://github.com/Org/Repo", "path": str(src)}
    listed = requests.get(
        f"{ws.url}/local-admin/git-sources",
        headers={"Authorization": f"Bearer {ws.token}"},
        timeout=10,
    ).json()
    assert listed == {"git_sources": [{"url": "https://github.com/Org/Repo", "path": str(src)}]}
    repo = w.repos.create(url=url, provider="gitHub", path=f"{HOME_REPOS}/repo")
    assert (repo.url, repo.head_commit_id) == (url, git(src, "rev-parse", "HEAD"))
    with_token = "https://user:token@github.com/org/repo.git"
    again = w.repos.create(url=with_token, provider="gitHub", path=f"{HOME_REPOS}/again")
    assert again.url == url  # a token in a URL is never kept nor answered


def test_an_unknown_url_is_refused_naming_it(w) -> None:  # type: ignore[no-untyped-def]
    url = "https://github.com/org/unknown.git"
    with pytest.raises(DatabricksError, match=re.escape(f"{url} is unknown")):
        w.repos.create(url=url, provider="gitHub", path=f"{HOME_REPOS}/unknown")
    with pytest.raises(NotFound):
        w.workspace.get_status(f"{HOME_REPOS}/unknown")


def test_where_a_git_folder_may_be_made(w, src: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatabricksError, match=r"/Repos/\{folder\}/\{repo-name\}"):
        w.repos.create(url=str(src), provider="gitHub", path="/Repos/alone")
    with pytest.raises(DatabricksError, match=r"/Repos/\{folder\}/\{repo-name\}"):
        w.repos.create(url=str(src), provider="gitHub", path=f"{HOME_REPOS}/a/b")
    with pytest.raises(NotFound, match="parent folder"):
        w.repos.create(url=str(src), provider="gitHub", path="/Repos/someone-else/proj")
    with pytest.raises(NotFound, match="parent folder"):
        w.repos.create(url=str(src), provider="gitHub", path=f"/Users/{USER}/missing/proj")
    made = w.repos.create(url=str(src), provider="gitHub", path=f"/Workspace/Users/{USER}/proj")
    assert made.path == f"/Users/{USER}/proj"  # /Workspace is the same tree
    with pytest.raises(ResourceAlreadyExists):
        w.repos.create(url=str(src), provider="gitHub", path=f"/Users/{USER}/proj")
    with pytest.raises(DatabricksError, match="inside a Git folder"):
        w.repos.create(url=str(src), provider="gitHub", path=f"/Users/{USER}/proj/notebooks/x")
    with pytest.raises(DatabricksError, match="Invalid Git provider"):
        w.repos.create(url=str(src), provider="svn", path=f"/Users/{USER}/other")
    # no path: the user's own /Repos folder, named after the repository
    default = w.repos.create(url="file://" + str(src) + "/", provider="gitLab")
    assert default.path == f"{HOME_REPOS}/src"
