"""File operations inside one folder of the state dir that never follow a symbolic link.

The workspace mirror and the DBFS root are written by the APIs and by the notebooks that run
here, which may plant a symbolic link (``%sh ln -s / /dbfs/x``). Were the APIs to follow it,
``dbfs/read``, ``dbfs/put`` or ``workspace/import`` would reach files outside the state dir.
So every operation walks the path one name at a time from the root's file descriptor
(``openat`` with ``O_NOFOLLOW``): a link met on the way is refused (:class:`SymlinkRefused`,
a 400), a link that is itself the object removed or replaced is removed or replaced, never
what it points to. Walking by descriptor also means only one name at a time reaches the
kernel, so a long path under a long state dir never hits ``PATH_MAX`` midway.

Errors are the ``OSError`` subclasses :mod:`os` raises (``FileNotFoundError``,
``NotADirectoryError``, ``FileExistsError``, ``IsADirectoryError``), which the APIs turn into
their own answers; paths are given as tuples of names (:func:`names`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from orchestrator.local.state.api_error import ApiError

__all__ = ["SymlinkRefused", "Tree", "names", "purge"]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class SymlinkRefused(ApiError):
    """A symbolic link where the state holds only files and folders: refused, never followed."""

    def __init__(self, where: str) -> None:
        super().__init__(
            400,
            "INVALID_STATE",
            f"{where[:300]} is a symbolic link in the local workspace's state; "
            "the local workspace never follows links there",
        )


def names(path: str) -> tuple[str, ...]:
    """The names of an absolute, normalized path (``/a/b`` -> ``("a", "b")``)."""
    parts = tuple(p for p in path.split("/") if p)
    if any(p in (".", "..") or "\x00" in p for p in parts):
        raise ValueError(f"not a normalized path: {path[:200]!r}")
    return parts


class Tree:
    """A folder whose contents are reached only through real folders below it.

    ``label`` prefixes the paths in messages (``dbfs:`` for DBFS, ``""`` for the workspace);
    ``trash`` is a folder on the same file system where trees are moved before being deleted,
    so a deleted path is gone at once however large it was."""

    def __init__(self, root: Path, *, trash: Path, label: str = "") -> None:
        self.root = root
        self.trash = trash
        self.label = label

    def _where(self, parts: Sequence[str]) -> str:
        return self.label + "/" + "/".join(parts)

    # --- walking -------------------------------------------------------------------------
    def _open_root(self) -> int:
        try:
            return os.open(self.root, _DIR)
        except NotADirectoryError:
            if self.root.is_symlink():
                raise SymlinkRefused(self.label + "/") from None
            raise

    def _step(self, fd: int, name: str, parts: Sequence[str], *, create: bool) -> int:
        """The descriptor of folder ``name`` in ``fd`` (made when ``create``)."""
        try:
            return os.open(name, _DIR, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
        except NotADirectoryError:
            self._refuse_link(fd, name, parts)
            raise
        with contextlib.suppress(FileExistsError):  # made by someone else meanwhile: fine
            os.mkdir(name, dir_fd=fd)
        try:
            return os.open(name, _DIR, dir_fd=fd)
        except NotADirectoryError:
            self._refuse_link(fd, name, parts)
            raise

    def _refuse_link(self, fd: int, name: str, parts: Sequence[str]) -> None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                raise SymlinkRefused(self._where(parts))

    @contextmanager
    def folder(self, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the folder ``parts`` (made, with its parents, when ``create``):
        ``FileNotFoundError`` when missing, ``NotADirectoryError`` when a file is in the way,
        :class:`SymlinkRefused` when a link is."""
        fd = self._open_root()
        try:
            for index, name in enumerate(parts):
                child = self._step(fd, name, parts[: index + 1], create=create)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def parent(self, parts: Sequence[str], *, create: bool = False) -> Iterator[tuple[int, str]]:
        """The descriptor of the folder holding ``parts`` and the last name."""
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "the root has no parent", self._where(parts))
        with self.folder(parts[:-1], create=create) as fd:
            yield fd, parts[-1]

    # --- reading -------------------------------------------------------------------------
    def lstat(self, parts: Sequence[str]) -> os.stat_result | None:
        """The object's own status (a link's, not its target's); None when nothing is there
        (or a file is in the way of its folder)."""
        if not parts:
            with self.folder(()) as fd:
                return os.fstat(fd)
        try:
            with self.parent(parts) as (fd, name):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def is_dir(self, parts: Sequence[str]) -> bool:
        found = self.lstat(parts)
        return found is not None and stat.S_ISDIR(found.st_mode)

    @contextmanager
    def open_file(self, parts: Sequence[str]) -> Iterator[int]:
        """A read-only descriptor of the file ``parts``; a link there is refused."""
        with self.parent(parts) as (fd, name):
            try:
                file_fd = os.open(name, _FILE, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise SymlinkRefused(self._where(parts)) from None
                raise
        try:
            yield file_fd
        finally:
            os.close(file_fd)

    def read_bytes(self, parts: Sequence[str]) -> bytes:
        with self.open_file(parts) as fd, os.fdopen(os.dup(fd), "rb") as stream:
            return stream.read()

    def entries(self, parts: Sequence[str]) -> list[tuple[str, os.stat_result]]:
        """The folder's entries with their own status (links not followed), sorted by name."""
        with self.folder(parts) as fd:
            found = []
            for name in sorted(os.listdir(fd)):  # noqa: PTH208 (a descriptor, not a path)
                with contextlib.suppress(FileNotFoundError):  # removed while listing
                    found.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
            return found

    # --- writing -------------------------------------------------------------------------
    def makedirs(self, parts: Sequence[str]) -> None:
        """Make the folder ``parts`` and the folders above it."""
        with self.folder(parts, create=True):
            pass

    def place(self, temporary: Path, parts: Sequence[str], *, make_parents: bool = False) -> None:
        """Rename ``temporary`` (a finished file on the same file system) to ``parts``,
        replacing a file or link there, never a folder (``IsADirectoryError``)."""
        with self.parent(parts, create=make_parents) as (fd, name):
            found = _lstat_at(fd, name)
            if found is not None and stat.S_ISDIR(found.st_mode):
                raise IsADirectoryError(errno.EISDIR, "a folder is there", self._where(parts))
            os.rename(temporary, name, dst_dir_fd=fd)

    def move(self, source: Sequence[str], target: Sequence[str]) -> None:
        """Rename ``source`` to ``target`` (whose folder must exist and which must not)."""
        with self.parent(source) as (src_fd, src_name), self.parent(target) as (dst_fd, name):
            if _lstat_at(src_fd, src_name) is None:
                raise FileNotFoundError(errno.ENOENT, "nothing there", self._where(source))
            if _lstat_at(dst_fd, name) is not None:
                raise FileExistsError(errno.EEXIST, "something is there", self._where(target))
            os.rename(src_name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)

    def remove(self, parts: Sequence[str]) -> bool:
        """Delete the object at ``parts``: a file or a link (the link itself, never its
        target), or a folder with everything in it. False when nothing was there."""
        found, doomed = self.detach(parts)
        purge(doomed)
        return found

    def detach(self, parts: Sequence[str]) -> tuple[bool, Path | None]:
        """Take the object at ``parts`` out of the tree at once: a file or a link is unlinked
        (the link itself, never its target), a folder is renamed into the trash. Returns
        whether something was there, and the trash folder to :func:`purge` (None for a
        file), so a caller that holds a lock while it changes the tree deletes a large
        folder's contents after letting go of it."""
        try:
            with self.parent(parts) as (fd, name):
                found = _lstat_at(fd, name)
                if found is None:
                    return False, None
                if not stat.S_ISDIR(found.st_mode):
                    os.unlink(name, dir_fd=fd)
                    return True, None
                # renamed away first: the path is gone at once, however large the tree. It
                # goes straight to a new name in the trash: a folder made to hold it would
                # cost a mkdir, which on a journaling file system is most of a delete's time
                with self.folder_at(self.trash) as trash_fd:
                    doomed = self.trash / _rename_away(name, fd, trash_fd)
        except (FileNotFoundError, NotADirectoryError):
            return False, None
        return True, doomed

    @staticmethod
    @contextmanager
    def folder_at(path: Path) -> Iterator[int]:
        fd = os.open(path, _DIR)
        try:
            yield fd
        finally:
            os.close(fd)


def _rename_away(name: str, fd: int, trash_fd: int) -> str:
    """Rename the folder ``name`` (in ``fd``) to a new random name in the trash; the name."""
    while True:
        doomed = f"delete-{secrets.token_hex(8)}"
        try:
            # RENAME_NOREPLACE is not in os: an empty folder of the same name would be
            # replaced, which a random 64-bit name never meets; a full one is an error
            if _lstat_at(trash_fd, doomed) is None:
                os.rename(name, doomed, src_dir_fd=fd, dst_dir_fd=trash_fd)
                return doomed
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise


def purge(doomed: Path | None) -> None:
    """Delete what :meth:`Tree.detach` moved to the trash (``rmtree`` never follows links)."""
    if doomed is not None:
        shutil.rmtree(doomed, ignore_errors=True)


def _lstat_at(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
