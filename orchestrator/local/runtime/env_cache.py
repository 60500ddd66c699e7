"""Python environments built once per resolution and reused by later runs, bounded by size.

A run's first ``%pip install`` (or its task's libraries, or its serverless environment) is
resolved to exact versions first; the folder of packages built for that resolution is kept
here under a key derived from it (:func:`resolution_key`) and later runs with the same
resolution get a copy made of hard links (:func:`link_tree`): no download, no unpacking, no
build. A run's own folders are new directories, so the ``__pycache__`` files its imports write
stay in the run; only package files are shared (a notebook that edits an installed package's
file in place would change the cached copy: the same holds for uv's own cache, which links
into environments the same way).

The cache lives in ``<state_dir>/cache/python-envs/`` and is bounded by size: after each new
environment the least recently used ones go until the total is under the bound
(:func:`enforce_bound`); ``orchestrator local prune`` empties it (:func:`clear_cache`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_MB_VARIABLE",
    "EnvCache",
    "cache_root",
    "clear_cache",
    "configured_max_bytes",
    "link_tree",
    "resolution_key",
    "tree_bytes",
]

#: the default bound of the environment cache (and of uv's cache beside it)
DEFAULT_MAX_BYTES = 5 * 1024**3
#: the variable of the orchestrator's environment that sets the bound, in MB
MAX_MB_VARIABLE = "ORCHESTRATOR_LOCAL_ENV_CACHE_MB"
_COMPLETE = ".orch-complete"
_USED = ".orch-used"


def cache_root(state_dir: Path) -> Path:
    """The folder of the workspace's install caches: ``envs/`` (built environments) and
    ``uv/`` (uv's download and wheel cache)."""
    return state_dir / "cache" / "python-envs"


def configured_max_bytes(environ: Mapping[str, str]) -> int:
    """The cache's bound: ``$ORCHESTRATOR_LOCAL_ENV_CACHE_MB`` megabytes, else the default."""
    text = environ.get(MAX_MB_VARIABLE, "").strip()
    try:
        return max(0, int(float(text) * 1024**2)) if text else DEFAULT_MAX_BYTES
    except ValueError:
        return DEFAULT_MAX_BYTES


def resolution_key(facts: dict[str, Any]) -> str:
    """A stable key for what decides an environment's contents (interpreter, pinned
    requirements, hashes of local files, index options)."""
    text = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def tree_bytes(root: Path) -> int:
    """The disk a folder's files take, each inode once (hard links are shared)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                stat = (Path(folder) / name).lstat()
                if (stat.st_dev, stat.st_ino) not in seen:
                    seen.add((stat.st_dev, stat.st_ino))
                    total += stat.st_blocks * 512
    return total


def link_tree(source: Path, target: Path) -> int:
    """Copy ``source`` into ``target`` (which may exist) as new folders of hard-linked files,
    falling back to copies across file systems; the number of files."""
    count = 0
    for folder, dirs, files in os.walk(source):
        rel = Path(folder).relative_to(source)
        dest = target / rel
        dest.mkdir(parents=True, exist_ok=True)
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if rel == Path() and name in (_COMPLETE, _USED):
                continue
            src_file = Path(folder) / name
            dest_file = dest / name
            if dest_file.exists() or dest_file.is_symlink():
                dest_file.unlink()
            if src_file.is_symlink():
                dest_file.symlink_to(src_file.readlink())
            else:
                try:
                    os.link(src_file, dest_file)
                except OSError:
                    shutil.copy2(src_file, dest_file)
            count += 1
    return count


def clear_cache(state_dir: Path) -> int:
    """Empty the install caches (``orchestrator local prune``); the bytes freed."""
    root = cache_root(state_dir)
    if not root.exists():
        return 0
    freed = tree_bytes(root)
    shutil.rmtree(root, ignore_errors=True)
    return freed


class EnvCache:
    """Built environments under ``<root>/envs/<key>/``, least recently used dropped first."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root / "envs"
        self.max_bytes = max_bytes

    def lookup(self, key: str) -> Path | None:
        """The environment built for ``key``, marked as used now; None when there is none."""
        folder = self.root / key
        if not (folder / _COMPLETE).is_file():
            return None
        with contextlib.suppress(OSError):
            (folder / _USED).write_text(str(time.time()), encoding="utf-8")
        return folder

    def building(self, key: str) -> Path:
        """An empty folder to build ``key``'s environment in (then :meth:`store` it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root / f".building-{key}-{os.getpid()}-{time.monotonic_ns()}"
        folder.mkdir()
        return folder

    def store(self, key: str, built: Path) -> Path:
        """Keep ``built`` as ``key``'s environment (another run may have stored it first: then
        theirs is kept) and drop old ones beyond the bound; the stored folder."""
        (built / _COMPLETE).write_text(key, encoding="utf-8")
        (built / _USED).write_text(str(time.time()), encoding="utf-8")
        folder = self.root / key
        try:
            built.rename(folder)
        except OSError:  # stored meanwhile by a concurrent run
            shutil.rmtree(built, ignore_errors=True)
        self.enforce_bound(keep=key)
        return folder

    def discard(self, built: Path) -> None:
        """Remove a folder from :meth:`building` whose build failed."""
        shutil.rmtree(built, ignore_errors=True)

    def entries(self) -> list[tuple[float, str, int]]:
        """``(last used, key, bytes)`` of every stored environment, oldest use first."""
        found: list[tuple[float, str, int]] = []
        if not self.root.is_dir():
            return found
        for folder in self.root.iterdir():
            if folder.name.startswith(".") or not (folder / _COMPLETE).is_file():
                continue
            try:
                used = float((folder / _USED).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                used = 0.0
            found.append((used, folder.name, tree_bytes(folder)))
        return sorted(found)

    def enforce_bound(self, *, keep: str | None = None) -> list[str]:
        """Drop the least recently used environments until the rest fit ``max_bytes`` (the
        one just stored, ``keep``, stays even alone over the bound); the keys dropped."""
        entries = self.entries()
        total = sum(size for _used, _key, size in entries)
        dropped: list[str] = []
        for _used, key, size in entries:
            if total <= self.max_bytes:
                break
            if key == keep:
                continue
            shutil.rmtree(self.root / key, ignore_errors=True)
            total -= size
            dropped.append(key)
        return dropped
