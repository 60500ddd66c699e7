"""The ``/Workspace`` and ``/dbfs`` path mapping of the in-kernel ``dbutils`` shim.

This module owns :class:`_PathMapper` (``/Workspace/x`` is ``$ORCH_WORKSPACE_ROOT/x``,
``/dbfs/x`` is ``$ORCH_DBFS_ROOT/x``) and :func:`_install_path_hooks`, which routes ``open``
and the path-taking ``os`` functions that ``os.path``, ``pathlib``, ``shutil`` and ``glob``
call (see :data:`_ONE_PATH_OS_FUNCTIONS`) through the current mapper, so ordinary file APIs
work on those paths. ``dbutils.fs`` maps its paths with the same mapper.

As on Databricks Runtime 14+, the working directory reads as ``/Workspace/...``:
``os.getcwd()`` (and so ``%pwd``, ``Path.cwd()``, ``os.path.abspath``) maps a folder under a
root back to its ``/Workspace``/``/dbfs`` spelling, while the process's real working directory
stays the local folder (relative paths, subprocesses). A ``sys.path`` entry spelled that way
imports through :func:`_mapped_path_hook`, since the import system calls ``posix`` directly,
and a ``subprocess`` ``cwd`` spelled that way is mapped too.

The mapping lives in this Python process only: code that opens files from C, subprocesses,
and modules that kept a reference to ``open`` from before the hooks see the real file system.

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import posixpath
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .common import _WRAPPED_MARK, _mark

__all__: list[str] = []


class _PathMapper:
    """Maps ``/Workspace/...`` and ``/dbfs/...`` to the local folders that hold them.

    ``map`` is on the path of every ``open``/``os.stat`` in the kernel, so its common case (a
    path outside both prefixes) is one ``str.startswith`` with a tuple.
    """

    __slots__ = ("_by_root", "_prefixes", "_roots")

    def __init__(self, roots: Mapping[str, str]) -> None:
        self._roots = {prefix: root.rstrip("/") or "/" for prefix, root in roots.items() if root}
        self._prefixes = tuple(self._roots)
        #: (root, prefix), the longest root first: ``<dbfs>/Volumes`` is ``/Volumes``
        self._by_root = sorted(
            ((root, prefix) for prefix, root in self._roots.items() if root != "/"),
            key=lambda item: -len(item[0]),
        )

    def unmap(self, path: str) -> str:
        """The ``/Workspace``/``/dbfs`` spelling of a local path under a root, else ``path``."""
        for root, prefix in self._by_root:
            if path == root:
                return prefix
            if path.startswith(root) and path[len(root)] == "/":
                return prefix + path[len(root) :]
        return path

    def mapped_prefix(self, path: str) -> bool:
        """Whether ``path`` is spelled with one of the mapped prefixes."""
        if not path.startswith(self._prefixes):
            return False
        try:
            return self.map_str(path) != path
        except PermissionError:
            return False

    def map(self, path: Any) -> Any:
        """Return the local equivalent of ``path``, or ``path`` itself when not mapped."""
        if type(path) is str:
            return self.map_str(path) if path.startswith(self._prefixes) else path
        if isinstance(path, int):
            return path
        if isinstance(path, str):
            return self.map_str(path)
        try:
            text = os.fspath(path)
        except TypeError:
            return path  # let the wrapped function raise its own error
        if isinstance(text, bytes):
            decoded = os.fsdecode(text)
            if not decoded.startswith(self._prefixes):
                return path
            mapped = self.map_str(decoded)
            return path if mapped is decoded else os.fsencode(mapped)
        if not text.startswith(self._prefixes):
            return path
        mapped = self.map_str(text)
        return path if mapped is text else mapped

    def map_str(self, path: str) -> str:
        """Map one path string; raise ``PermissionError`` when ``..`` escapes a root."""
        for prefix, root in self._roots.items():
            if not path.startswith(prefix):
                continue
            n = len(prefix)
            if len(path) > n and path[n] != "/":
                continue  # "/dbfsx" is not under "/dbfs"
            rest = path[n:].lstrip("/")
            if not rest:
                return root
            norm = posixpath.normpath(rest)
            if norm == ".." or norm.startswith("../"):
                raise PermissionError(
                    errno.EACCES, f"Path escapes {prefix} in the local workspace", path
                )
            if norm == ".":
                return root
            mapped = f"{root}/{norm}" if root != "/" else f"/{norm}"
            return mapped + "/" if rest.endswith("/") else mapped
        return path


_MAPPER = _PathMapper({})

#: ``os`` functions whose first argument is a path (or a file descriptor, passed through).
_ONE_PATH_OS_FUNCTIONS = (
    "stat",
    "lstat",
    "mkdir",
    "rmdir",
    "remove",
    "unlink",
    "access",
    "open",
    "utime",
    "chmod",
    "chown",
    "lchown",
    "truncate",
    "readlink",
    "chdir",
    "statvfs",
    "pathconf",
    "listxattr",
    "getxattr",
    "setxattr",
    "removexattr",
)
#: ``os`` functions whose first two arguments are paths.
_TWO_PATH_OS_FUNCTIONS = ("rename", "replace", "link", "symlink")


class _DirEntry:
    """An ``os.DirEntry`` whose ``path`` keeps the ``/Workspace``/``/dbfs`` spelling."""

    __slots__ = ("_entry", "name", "path")

    def __init__(self, entry: os.DirEntry[Any], parent: str | bytes) -> None:
        self._entry = entry
        self.name = entry.name
        self.path = posixpath.join(parent, entry.name)

    def __fspath__(self) -> Any:
        return self.path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._entry, name)  # is_dir, is_file, is_symlink, stat, inode...

    def __repr__(self) -> str:
        return f"<DirEntry {self.name!r}>"


class _ScandirIterator:
    """Wraps the iterator of ``os.scandir`` on a mapped folder, see :class:`_DirEntry`."""

    def __init__(self, iterator: Any, parent: str | bytes) -> None:
        self._iterator = iterator
        self._parent = parent

    def __iter__(self) -> Iterator[_DirEntry]:
        return self

    def __next__(self) -> _DirEntry:
        return _DirEntry(next(self._iterator), self._parent)

    def __enter__(self) -> _ScandirIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._iterator.close()


def _wrap_one_path(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
        return original(_MAPPER.map(path), *args, **kwargs)

    return _mark(wrapper, original)


def _wrap_two_paths(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        return original(_MAPPER.map(src), _MAPPER.map(dst), *args, **kwargs)

    return _mark(wrapper, original)


def _wrap_listdir(original: Callable[..., Any]) -> Callable[..., Any]:
    def listdir(path: Any = None) -> Any:
        return original() if path is None else original(_MAPPER.map(path))

    return _mark(listdir, original)


def _wrap_scandir(original: Callable[..., Any]) -> Callable[..., Any]:
    def scandir(path: Any = None) -> Any:
        if path is None:
            return original()
        mapped = _MAPPER.map(path)
        if mapped is path:
            return original(path)
        return _ScandirIterator(original(mapped), os.fspath(path))

    return _mark(scandir, original)


def _wrap_open(original: Callable[..., Any]) -> Callable[..., Any]:
    def open(file: Any, *args: Any, **kwargs: Any) -> Any:
        return original(_MAPPER.map(file), *args, **kwargs)

    return _mark(open, original)


def _wrap_getcwd(original: Callable[[], str]) -> Callable[[], str]:
    def getcwd() -> str:
        return _MAPPER.unmap(original())

    return _mark(getcwd, original)


def _wrap_getcwdb(original: Callable[[], bytes]) -> Callable[[], bytes]:
    def getcwdb() -> bytes:
        return os.fsencode(_MAPPER.unmap(os.fsdecode(original())))

    return _mark(getcwdb, original)


#: the process's real working directory (``os.getcwd`` as it was before the hooks)
real_getcwd: Callable[[], str] = os.getcwd


def _wrap_popen_init(original: Callable[..., None]) -> Callable[..., None]:
    """``subprocess.Popen(..., cwd="/Workspace/...")``: the child starts in the local folder
    (a path ``os.getcwd()`` gave back works as a subprocess's ``cwd``, as on Databricks)."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("cwd") is not None:
            kwargs["cwd"] = _MAPPER.map(kwargs["cwd"])
        original(self, *args, **kwargs)

    return _mark(__init__, original)


def _mapped_path_hook(path: str) -> Any:
    """A ``sys.path_hooks`` entry: a ``/Workspace/...`` entry is found by the finder of the
    local folder that holds it. Other paths are left to the next hook."""
    if not isinstance(path, str) or not _MAPPER.mapped_prefix(path):
        raise ImportError("not a /Workspace or /dbfs path")
    local = _MAPPER.map_str(path)
    for hook in sys.path_hooks:
        if hook is _mapped_path_hook:
            continue
        try:
            return hook(local)
        except ImportError:
            continue
    raise ImportError(f"no finder for {path}")


def _install_path_hooks(mapper: _PathMapper, user_ns: dict[str, Any] | None) -> None:
    """Route ``open`` and the path-taking ``os`` functions through ``mapper``.

    Idempotent: a second call only swaps the mapper. The wrappers join the ``os.supports_*``
    sets of the functions they replace, so feature checks (``shutil.rmtree``) still pass.
    """
    global _MAPPER
    _MAPPER = mapper
    if not getattr(os.stat, _WRAPPED_MARK, False):
        replacements: list[tuple[Callable[..., Any], Callable[..., Any]]] = []
        for name in _ONE_PATH_OS_FUNCTIONS + _TWO_PATH_OS_FUNCTIONS + ("listdir", "scandir"):
            original = getattr(os, name, None)
            if original is None:
                continue
            if name == "listdir":
                wrapper = _wrap_listdir(original)
            elif name == "scandir":
                wrapper = _wrap_scandir(original)
            elif name in _TWO_PATH_OS_FUNCTIONS:
                wrapper = _wrap_two_paths(original)
            else:
                wrapper = _wrap_one_path(original)
            setattr(os, name, wrapper)
            replacements.append((original, wrapper))
        for support in (
            os.supports_dir_fd,
            os.supports_fd,
            os.supports_follow_symlinks,
            os.supports_effective_ids,
        ):
            for original, wrapper in replacements:
                if original in support:
                    support.add(wrapper)
        wrapped_open = _wrap_open(builtins.open)
        builtins.open = wrapped_open
        io.open = wrapped_open
        os.getcwd = _wrap_getcwd(os.getcwd)
        os.getcwdb = _wrap_getcwdb(os.getcwdb)
        sys.path_hooks.insert(0, _mapped_path_hook)
        sys.path_importer_cache.clear()
        subprocess.Popen.__init__ = _wrap_popen_init(subprocess.Popen.__init__)  # type: ignore[method-assign]
    if user_ns is not None:
        # IPython puts its own ``open`` (refusing fds 0-2) into the user namespace.
        user_open = user_ns.get("open")
        if callable(user_open) and not getattr(user_open, _WRAPPED_MARK, False):
            user_ns["open"] = _wrap_open(user_open)
