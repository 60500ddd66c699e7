"""``dbutils.fs`` of the in-kernel shim, over the local DBFS and workspace folders.

This module owns :class:`FsUtil` and :class:`FileInfo`. ``dbfs:/x``, ``/x`` and ``/dbfs/x``
are ``$ORCH_DBFS_ROOT/x``; ``/Workspace/x`` is ``$ORCH_WORKSPACE_ROOT/x``; ``file:/x`` is the
local file ``/x``. Paths are mapped with the :class:`~.path_mapping._PathMapper` that the
ordinary file APIs of the kernel use too.

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

import errno
import os
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .common import (
    _DBFS,
    _WORKSPACE,
    DbutilsError,
    _Config,
    _has_prefix,
    _print_help,
)

if TYPE_CHECKING:
    from .path_mapping import _PathMapper

__all__ = ["FileInfo", "FsUtil"]


class FileInfo(NamedTuple):
    """One entry of ``dbutils.fs.ls``; a folder's ``name`` and ``path`` end with ``/``."""

    path: str
    name: str
    size: int
    modificationTime: int

    def isDir(self) -> bool:
        return self.name.endswith("/")

    def isFile(self) -> bool:
        return not self.isDir()


class _FsPath(NamedTuple):
    local: Path
    uri: str  # how Databricks spells it: dbfs:/x, file:/x, file:/Workspace/x


class FsUtil:
    """``dbutils.fs`` over the local DBFS and workspace folders.

    Paths: ``dbfs:/x``, ``/x`` and ``/dbfs/x`` are in the DBFS root; ``/Workspace/x`` (and
    ``file:/Workspace/x``) in the workspace root; ``file:/x`` is the local file ``/x``. A
    path that leaves its root through ``..`` is refused with ``PermissionError``.
    """

    def __init__(self, config: _Config, mapper: _PathMapper) -> None:
        self._config = config
        self._mapper = mapper

    def ls(self, dir: str) -> list[FileInfo]:
        """Lists the contents of a directory (or the file itself, for a file)."""
        target = self._resolve(dir)
        try:
            if not target.local.is_dir():
                return [self._info(target.local, target.uri, target.local.stat())]
            infos = []
            base = target.uri.rstrip("/")
            for child in sorted(target.local.iterdir(), key=lambda p: p.name):
                infos.append(self._info(child, f"{base}/{child.name}", child.stat()))
            return infos
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT, f"java.io.FileNotFoundException: File {target.uri} does not exist."
            ) from None

    def mkdirs(self, dir: str) -> bool:
        """Creates the given directory and its parents if they do not exist."""
        self._resolve(dir).local.mkdir(parents=True, exist_ok=True)
        return True

    def put(self, file: str, contents: str, overwrite: bool = False) -> bool:
        """Writes the given string out to a file, encoded in UTF-8."""
        target = self._resolve(file)
        if target.local.is_dir():
            raise IsADirectoryError(errno.EISDIR, f"{target.uri} is a directory")
        if target.local.exists() and not overwrite:
            raise FileExistsError(
                errno.EEXIST,
                f"java.io.FileAlreadyExistsException: File {target.uri} already exists. "
                "Use overwrite=True to replace it.",
            )
        data = str(contents).encode("utf-8")
        target.local.parent.mkdir(parents=True, exist_ok=True)
        target.local.write_bytes(data)
        print(f"Wrote {len(data)} bytes.")
        return True

    def head(self, file: str, maxBytes: int = 65536) -> str:
        """Returns up to the first ``maxBytes`` bytes of the file, decoded as UTF-8."""
        target = self._resolve(file)
        if not target.local.exists():
            raise FileNotFoundError(
                errno.ENOENT, f"java.io.FileNotFoundException: File {target.uri} does not exist."
            )
        with target.local.open("rb") as handle:
            data = handle.read(max(0, int(maxBytes)))
        return data.decode("utf-8", errors="replace")

    def rm(self, dir: str, recurse: bool = False) -> bool:
        """Removes a file or directory; returns False when there was nothing to remove."""
        import shutil

        target = self._resolve(dir)
        local = target.local
        if not local.exists() and not local.is_symlink():
            return False
        if local.is_dir() and not local.is_symlink():
            if recurse:
                shutil.rmtree(local)
            elif any(local.iterdir()):
                raise OSError(
                    errno.ENOTEMPTY,
                    f"Cannot remove {target.uri}: the directory is not empty. "
                    "Use recurse=True to remove it with its contents.",
                )
            else:
                local.rmdir()
        else:
            local.unlink()
        return True

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        """Copies a file, or a directory's contents with ``recurse=True``."""
        import shutil

        source, dest = self._source_and_dest(from_, to, recurse)
        if source.local.is_dir():
            shutil.copytree(source.local, dest, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.local, dest)
        return True

    def mv(self, from_: str, to: str, recurse: bool = False) -> bool:
        """Moves a file, or a directory with ``recurse=True``."""
        import shutil

        source, dest = self._source_and_dest(from_, to, recurse)
        if source.local.is_dir() and dest.is_dir():
            shutil.copytree(source.local, dest, dirs_exist_ok=True)
            shutil.rmtree(source.local)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source.local, dest)
        return True

    def help(self, method: str | None = None) -> None:
        """Prints the file system utility's methods."""
        _print_help(self, "dbutils.fs", method)

    def _source_and_dest(self, from_: str, to: str, recurse: bool) -> tuple[_FsPath, Path]:
        source = self._resolve(from_)
        dest = self._resolve(to)
        if not source.local.exists():
            raise FileNotFoundError(
                errno.ENOENT, f"java.io.FileNotFoundException: File {source.uri} does not exist."
            )
        if source.local.is_dir():
            if not recurse:
                raise IsADirectoryError(
                    errno.EISDIR,
                    f"{source.uri} is a directory. Use recurse=True to copy or move it.",
                )
            return source, dest.local
        if dest.local.is_dir() or to.endswith("/"):
            return source, dest.local / source.local.name
        return source, dest.local

    def _resolve(self, path: Any) -> _FsPath:
        text = os.fspath(path)
        if not isinstance(text, str):
            text = os.fsdecode(text)
        if text.startswith("dbfs:"):
            return self._in_dbfs(text[len("dbfs:") :])
        if text.startswith("file:"):
            rest = text[len("file:") :]
            if rest.startswith("//"):
                rest = rest[2:]  # file:///x
            absolute = posixpath.normpath("/" + rest.lstrip("/"))
            return _FsPath(Path(self._mapper.map_str(absolute)), "file:" + absolute)
        scheme, sep, _ = text.partition(":")
        if sep and scheme.isidentifier():
            raise DbutilsError(
                f"{scheme}: paths are not available in the local workspace ({text}); "
                "use dbfs:/, /Workspace/ or file:/ paths"
            )
        if _has_prefix(text, _WORKSPACE):
            if not self._config.workspace_root:
                raise DbutilsError("ORCH_WORKSPACE_ROOT is not set")
            local = Path(self._mapper.map_str(text))
            rel = text[len(_WORKSPACE) :].strip("/")
            uri = f"file:{_WORKSPACE}/{posixpath.normpath(rel)}" if rel else f"file:{_WORKSPACE}"
            return _FsPath(local, uri)
        if _has_prefix(text, _DBFS):
            return self._in_dbfs(text[len(_DBFS) :])
        return self._in_dbfs(text)

    def _in_dbfs(self, rest: str) -> _FsPath:
        if not self._config.dbfs_root:
            raise DbutilsError("ORCH_DBFS_ROOT is not set")
        rel = rest.lstrip("/")
        local = Path(self._mapper.map_str(f"{_DBFS}/{rel}" if rel else _DBFS))
        norm = posixpath.normpath(rel) if rel else "."
        return _FsPath(local, "dbfs:/" if norm == "." else f"dbfs:/{norm}")

    @staticmethod
    def _info(local: Path, uri: str, st: os.stat_result) -> FileInfo:
        mtime = int(st.st_mtime * 1000)
        name = posixpath.basename(uri.rstrip("/")) or uri
        if local.is_dir():
            return FileInfo(uri.rstrip("/") + "/", name + "/", 0, mtime)
        return FileInfo(uri, name, st.st_size, mtime)

    def __repr__(self) -> str:
        return "<dbutils.fs (local)>"
