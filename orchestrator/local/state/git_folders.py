"""Git folders of the local workspace: a real repository behind each, and the workspace objects
that show its files.

A Git folder at ``/Repos/me/project`` is a ``REPO`` object in the index; its files are the
work tree of ``<state_dir>/git/<id>.git`` at that place in the mirror (``workspace/Repos/me/
project``), so notebooks run there with their folder as working directory and read the files
beside them. After every checkout the folder's objects are indexed again from the work tree
(:func:`~.git_tree.walk_tree`: notebooks without their extension, files as named), keeping the
object id of every path that stays, so permissions given on them stay too.

The caller (the Repos API) validates the request first; this module makes or changes nothing
until git has done its part, and a create that fails leaves nothing behind.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from orchestrator.local.state import git_commands as git
from orchestrator.local.state.git_store import GitStore, RepoRecord
from orchestrator.local.state.git_tree import walk_tree
from orchestrator.local.state.store import ObjectRow, Store, now_ms

__all__ = ["GitFolders", "git_folder_of"]


def git_folder_of(store: Store, path: str) -> ObjectRow | None:
    """The Git folder ``path`` is (or is in), as its ``REPO`` object."""
    current = path
    while True:
        row = store.get_object(current)
        if row is not None and row.object_type == "REPO":
            return row
        if current == "/":
            return None
        current = current.rsplit("/", 1)[0] or "/"


class GitFolders:
    """Creates, checks out, indexes and deletes Git folders (one at a time)."""

    def __init__(self, store: Store, git_store: GitStore) -> None:
        self.store = store
        self.git = git_store
        self._lock = threading.RLock()

    def create(
        self,
        *,
        path: str,
        url: str,
        provider: str,
        source: Path,
        branch: str | None,
        sparse_patterns: tuple[str, ...] | None,
        make_parents: tuple[str, ...] = (),
    ) -> RepoRecord:
        """A Git folder at ``path`` (nothing is there; its parent exists, or is among the
        folders ``make_parents`` makes once the source is known good) cloned from the
        repository ``source`` at ``branch`` (its default branch when ``None``)."""
        with self._lock:
            source_dir = git.absolute_git_dir(source)
            target = git.resolve(source_dir, branch=branch)
            self.store.ensure_directories(*make_parents)
            repo_id = self.store.next_id("object")
            git_dir = self.git.git_dir(repo_id)
            work_tree = self.store.local_path(path)
            if work_tree.exists() and (not work_tree.is_dir() or any(work_tree.iterdir())):
                raise git.GitError(f"{path} holds files the workspace does not list")
            try:
                work_tree.mkdir(parents=True, exist_ok=True)
                git_dir.parent.mkdir(parents=True, exist_ok=True)
                git.init_folder(git_dir, work_tree)
                git.fetch_commit(git_dir, source_dir, target.commit)
                if sparse_patterns is not None:
                    git.set_sparse_patterns(git_dir, sparse_patterns)
                git.checkout_folder(git_dir, target, discard_changes=False)
            except BaseException:
                shutil.rmtree(git_dir, ignore_errors=True)
                shutil.rmtree(work_tree, ignore_errors=True)
                raise
            stamp = now_ms()
            self.store.put_object(ObjectRow(path, "REPO", None, repo_id, stamp, stamp, None))
            repo = RepoRecord(
                repo_id, path, url, provider, target.branch, target.commit, sparse_patterns
            )
            self.git.put_repo(repo)
            self._index(repo)
            return repo

    def update(
        self,
        repo: RepoRecord,
        *,
        source: Path,
        branch: str | None,
        tag: str | None,
        sparse_patterns: tuple[str, ...] | None,
        discard_changes: bool,
    ) -> RepoRecord:
        """Check ``repo`` out at the latest commit of ``branch``, at ``tag``, or at the latest
        commit of its own branch when neither is given; new sparse patterns first."""
        with self._lock:
            source_dir = git.absolute_git_dir(source)
            if branch is None and tag is None:
                branch = repo.branch
                if branch is None:
                    raise git.GitError("the Git folder is not on a branch: give a branch or a tag")
            target = git.resolve(source_dir, branch=branch, tag=tag)
            git_dir = self.git.git_dir(repo.repo_id)
            git.fetch_commit(git_dir, source_dir, target.commit)
            patterns = repo.sparse_patterns
            if sparse_patterns is not None:
                git.set_sparse_patterns(git_dir, sparse_patterns)
                patterns = sparse_patterns
            git.checkout_folder(git_dir, target, discard_changes=discard_changes)
            updated = RepoRecord(
                repo.repo_id,
                repo.path,
                repo.url,
                repo.provider,
                target.branch,
                target.commit,
                patterns,
            )
            self.git.put_repo(updated)
            self._index(updated)
            return updated

    def delete(self, repo: RepoRecord) -> None:
        """The Git folder, its objects and its repository."""
        with self._lock:
            shutil.rmtree(self.store.local_path(repo.path), ignore_errors=True)
            self.store.delete_tree(repo.path)
            self.forget(repo)

    def forget(self, repo: RepoRecord) -> None:
        """Drop ``repo``'s record and repository (its folder was deleted as a folder)."""
        with self._lock:
            shutil.rmtree(self.git.git_dir(repo.repo_id), ignore_errors=True)
            self.git.delete_repo(repo.repo_id)

    def _index(self, repo: RepoRecord) -> None:
        """The folder's objects made again from its work tree; ids of paths that stay kept."""
        root = repo.path
        known = {row.path: row for row in self._rows_under(root)}
        stamp = now_ms()
        seen: set[str] = set()
        for entry in walk_tree(self.store.local_path(root)):
            path = f"{root}/{entry.relative}"
            seen.add(path)
            old = known.get(path)
            same = old is not None and old.object_type == entry.object_type
            object_id = old.object_id if same and old else self.store.next_id("object")
            created = old.created_at if same and old else stamp
            self.store.put_object(
                ObjectRow(
                    path, entry.object_type, entry.language, object_id, created, stamp, entry.size
                )
            )
        for path in sorted(set(known) - seen, key=len, reverse=True):
            self.store.delete_tree(path)

    def _rows_under(self, root: str) -> list[ObjectRow]:
        rows: list[ObjectRow] = []
        pending = [root]
        while pending:
            for child in self.store.children(pending.pop()):
                rows.append(child)
                if child.object_type in ("DIRECTORY", "REPO"):
                    pending.append(child.path)
        return rows
