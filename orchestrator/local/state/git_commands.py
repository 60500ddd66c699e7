"""Git as the local workspace runs it: one ``git`` process per step, on local repositories only.

This module owns every call of the ``git`` command line: resolving a branch, tag or commit in a
source repository (a local checkout standing in for a remote), the Git folders' own
repositories (a git dir under the state folder whose work tree is the folder's place in the
workspace mirror, so the mirror never holds a ``.git``; cone-mode sparse checkout) and the
snapshot of one commit that a ``git_source`` run reads (a temporary index and
``checkout-index``: nothing is written into the source repository).

Every process gets an environment without ``GIT_*`` variables of ours (a ``GIT_DIR`` set by a
CI step or a hook must not redirect it) and never prompts. A failure is :class:`GitError`
with git's last message line.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "GitError",
    "Resolved",
    "absolute_git_dir",
    "checkout_folder",
    "cone_patterns",
    "export_commit",
    "fetch_commit",
    "in_cone",
    "init_folder",
    "resolve",
    "set_sparse_patterns",
]

#: no git step of the local workspace takes longer on a test-sized repository; a hung one
#: (a credential helper waiting for input) must not hold a request or a run for ever
_TIMEOUT_SECONDS = 300.0
_SHA = re.compile(r"[0-9a-fA-F]{4,40}")


class GitError(Exception):
    """A git step failed; the message is what to tell the caller (git's own last line)."""


@dataclass(frozen=True)
class Resolved:
    """What a reference named: its commit, and the branch to report (``None``: detached,
    as after a tag or a commit)."""

    commit: str
    branch: str | None


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0")
    return env


def _git(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
) -> str:
    """Run ``git args``; its stdout, or :class:`GitError` with its last message line."""
    try:
        done = subprocess.run(  # git with arguments we built, never through a shell
            ["git", *args],
            cwd=cwd,
            env=env or _environment(),
            input=stdin,
            capture_output=True,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise GitError("git is not installed on the machine of the local workspace") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} did not finish in {_TIMEOUT_SECONDS:g} seconds") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(lines[-1] if lines else f"git {args[0]} failed ({done.returncode})")
    return done.stdout.decode("utf-8", "replace")


def absolute_git_dir(repository: Path) -> Path:
    """The git dir of the repository at ``repository`` (a work tree or a bare repository)."""
    if not repository.is_dir():
        raise GitError(f"{repository} is not a folder")
    text = _git(["rev-parse", "--absolute-git-dir"], cwd=repository).strip()
    return Path(text)


def _commit_of(git_dir: Path, revision: str) -> str | None:
    try:
        text = _git(
            ["--git-dir", str(git_dir), "rev-parse", "--verify", "-q", f"{revision}^{{commit}}"]
        )
    except GitError:
        return None
    return text.strip() or None


def resolve(
    git_dir: Path, *, branch: str | None = None, tag: str | None = None, commit: str | None = None
) -> Resolved:
    """The commit a branch, tag or commit names in the source repository ``git_dir``; with
    none of them, its default branch (``HEAD``).

    The source stands in for the remote: a branch is its ``refs/heads/<branch>``, else its
    ``refs/remotes/origin/<branch>`` (a CI agent's clone has only those); a tag is
    ``refs/tags/<tag>``; a commit a hexadecimal id (4 to 40 digits) of a commit it holds."""
    if branch is not None:
        for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
            found = _commit_of(git_dir, ref)
            if found:
                return Resolved(found, branch)
        raise GitError(f"branch {branch} does not exist")
    if tag is not None:
        found = _commit_of(git_dir, f"refs/tags/{tag}")
        if not found:
            raise GitError(f"tag {tag} does not exist")
        return Resolved(found, None)
    if commit is not None:
        found = _commit_of(git_dir, commit) if _SHA.fullmatch(commit) else None
        if not found:
            raise GitError(f"commit {commit} does not exist")
        return Resolved(found, None)
    return _default(git_dir)


def _default(git_dir: Path) -> Resolved:
    """The source's default branch: what its ``HEAD`` (else ``origin/HEAD``) names."""
    for symbolic, prefix in (
        ("HEAD", "refs/heads/"),
        ("refs/remotes/origin/HEAD", "refs/remotes/origin/"),
    ):
        try:
            ref = _git(["--git-dir", str(git_dir), "symbolic-ref", "-q", symbolic]).strip()
        except GitError:
            continue
        found = _commit_of(git_dir, ref)
        if found and ref.startswith(prefix):
            return Resolved(found, ref[len(prefix) :])
    found = _commit_of(git_dir, "HEAD")
    if not found:
        raise GitError("the repository has no commit")
    return Resolved(found, None)


# --- Git folders -------------------------------------------------------------------------


def init_folder(git_dir: Path, work_tree: Path) -> None:
    """A new repository at ``git_dir`` whose work tree is ``work_tree``."""
    _git(["init", "-q", "--bare", str(git_dir)])
    for key, value in (("core.bare", "false"), ("core.worktree", str(work_tree))):
        _git(["--git-dir", str(git_dir), "config", key, value])


def fetch_commit(git_dir: Path, source_git_dir: Path, commit: str) -> None:
    """Bring ``commit`` (and what it needs) from the source into ``git_dir``."""
    _git(["--git-dir", str(git_dir), "fetch", "-q", "--no-tags", str(source_git_dir), commit])


def set_sparse_patterns(git_dir: Path, patterns: Sequence[str]) -> None:
    """Cone-mode sparse checkout of ``patterns`` (folders) for the work tree."""
    _git(["--git-dir", str(git_dir), "sparse-checkout", "set", "--cone", *patterns])


def checkout_folder(git_dir: Path, target: Resolved, *, discard_changes: bool) -> None:
    """Check ``target`` out in the folder's work tree: its branch moved to the commit (made
    when new), or a detached ``HEAD``. Uncommitted changes are kept, and a change that would
    be overwritten fails the step, unless ``discard_changes`` (then every uncommitted and
    untracked file goes first)."""
    base = ["--git-dir", str(git_dir)]
    if discard_changes and _commit_of(git_dir, "HEAD"):
        _git([*base, "reset", "-q", "--hard"])
        _git([*base, "clean", "-q", "-d", "-f", "-x"])
    if target.branch is None:
        _git([*base, "checkout", "-q", "--detach", target.commit])
    else:
        _git([*base, "checkout", "-q", "-B", target.branch, target.commit])


# --- snapshots of one commit ---------------------------------------------------------------


def cone_patterns(value: object) -> tuple[str, ...] | None:
    """A ``sparse_checkout`` object's cone patterns (folders of the repository, without
    wildcards), checked: ``None`` when there is no such object; :class:`ValueError` saying
    what is wrong otherwise."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("Invalid sparse_checkout: expected an object")
    patterns = value.get("patterns", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ValueError("Invalid sparse_checkout.patterns: expected a list of strings")
    checked: list[str] = []
    for pattern in patterns:
        clean = pattern.strip().strip("/")
        parts = clean.split("/")
        if (
            not clean
            or any(part in ("", ".", "..") for part in parts)
            or any(ch in clean for ch in "*?[]!\\\n")
        ):
            raise ValueError(
                f"Invalid sparse checkout pattern '{pattern[:100]}': cone patterns are folders "
                "of the repository"
            )
        checked.append(clean)
    return tuple(checked)


def in_cone(path: str, folders: Iterable[str]) -> bool:
    """Whether cone-mode sparse checkout of ``folders`` keeps the file ``path``: every file
    at the root, every file below one of the folders, and the files directly in a folder
    that leads to one (git-sparse-checkout, "Internals - cone mode handling")."""
    parent = posixpath.dirname(path)
    if not parent:
        return True
    for folder in folders:
        if path.startswith(folder + "/") or folder == parent or folder.startswith(parent + "/"):
            return True
    return False


def export_commit(
    source_git_dir: Path, commit: str, destination: Path, *, patterns: Sequence[str] = ()
) -> None:
    """The files of ``commit`` (only those in the cone of ``patterns`` when given) written
    under ``destination``, as a checkout would write them, with no ``.git``. The source
    repository is only read: the index used is a temporary one."""
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="orchestrator-git-") as tmp:
        env = _environment()
        env["GIT_INDEX_FILE"] = str(Path(tmp) / "index")
        base = ["--git-dir", str(source_git_dir)]
        _git([*base, "read-tree", commit], env=env)
        prefix = str(destination).rstrip("/") + "/"
        if not patterns:
            _git([*base, "checkout-index", "-a", "-f", f"--prefix={prefix}"], env=env)
            return
        listed = _git([*base, "ls-files", "-z"], env=env).split("\0")
        kept = [name for name in listed if name and in_cone(name, patterns)]
        _git(
            [*base, "checkout-index", "-f", "-z", "--stdin", f"--prefix={prefix}"],
            env=env,
            stdin="\0".join(kept).encode() + b"\0" if kept else b"",
        )
