"""Databricks notebook globals for Python notebooks run by the local workspace.

The executor starts one ipykernel per Python notebook task and, before the first user cell,
runs ``install(get_ipython())``. That puts into the user namespace what a Databricks notebook
finds there: ``dbutils``, ``display``, ``displayHTML``, ``spark`` (and ``sc``) and
``getArgument``. Everything is configured from the ``ORCH_*`` environment variables the
executor sets (see :class:`_Config`); nothing here talks to the server.

What each part maps to locally:

* ``dbutils.widgets``: widget definitions live in this process; run parameters
  (``ORCH_PARAMS``) win over widget defaults and are readable without a widget definition.
* ``dbutils.notebook.exit``: writes ``$ORCH_CONTROL_DIR/exit.json`` and raises
  :class:`NotebookExit`, which a custom IPython handler swallows without a traceback; the
  executor sees the file and ends the notebook as SUCCESS. ``dbutils.notebook.run`` runs
  ``python -m orchestrator.local.runtime.child`` and waits for its result file.
* ``dbutils.fs``: ``dbfs:/x``, ``/x`` and ``/dbfs/x`` are ``$ORCH_DBFS_ROOT/x``;
  ``/Workspace/x`` is ``$ORCH_WORKSPACE_ROOT/x``; ``file:/x`` is the local file ``/x``.
* ``dbutils.secrets``: values from ``ORCH_SECRETS``; values read are redacted from
  ``sys.stdout``/``sys.stderr`` (values of four characters or more) and from their ``repr``.
* ``/Workspace/...`` and ``/dbfs/...`` work with ordinary file APIs because :func:`install`
  wraps ``open`` and the path-taking ``os`` functions that ``os.path``, ``pathlib``,
  ``shutil`` and ``glob`` call (see :data:`_ONE_PATH_OS_FUNCTIONS`).

Limitations, by design of a local stand-in:

* The path mapping lives in this Python process only. Code that opens files from C (sqlite3,
  pyarrow, h5py...), subprocesses, and modules that kept a reference to ``open`` from before
  :func:`install` (``tarfile``) see the real file system, where ``/Workspace`` and ``/dbfs``
  do not exist. ``os.getcwd()`` returns the notebook's local folder.
* ``dbutils.library.restartPython()`` does not restart the process; it refreshes the import
  system so packages installed with ``%pip`` become importable.
* ``spark`` needs ``pyspark`` (and Java 17) installed into the notebook; it is created on first
  use as a ``local[1]`` session.

This module runs inside user kernels: standard library only, and nothing heavier than what
ipykernel has already imported is imported at module level.
"""

from __future__ import annotations

import builtins
import errno
import functools
import io
import json
import os
import posixpath
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import subprocess
    from types import TracebackType

__all__ = [
    "DbutilsError",
    "FileInfo",
    "InputWidgetNotDefined",
    "NotebookExit",
    "SecretMetadata",
    "SecretNotFound",
    "SecretScope",
    "SparkNotAvailable",
    "WidgetError",
    "WorkflowException",
    "display",
    "displayHTML",
    "install",
]

_WORKSPACE = "/Workspace"
_DBFS = "/dbfs"
_MAX_DISPLAY_ROWS = 1000
_MIN_REDACTED_LENGTH = 4
_CHILD_TRACE_CHARS = 4000
_SPARK_MISSING = (
    "spark is not available in the local workspace: pyspark is not installed. "
    "Install it into the notebook with %pip install pyspark (needs Java 17)"
)


# --------------------------------------------------------------------------- errors


class DbutilsError(Exception):
    """Base class of the errors this local ``dbutils`` raises."""


class InputWidgetNotDefined(DbutilsError):
    """``dbutils.widgets.get`` of a name that is neither a widget nor a run parameter."""

    def __init__(self, name: str) -> None:
        # The Java class name is part of the message because notebooks test for it:
        # ``if "InputWidgetNotDefined" in str(e)``.
        super().__init__(
            f"com.databricks.dbutils_v1.InputWidgetNotDefined: No input widget named {name} "
            "is defined"
        )
        self.name = name


class WidgetError(DbutilsError, ValueError):
    """A widget definition Databricks would refuse (default not among the choices...)."""


class SecretNotFound(DbutilsError):
    """A secret scope or key that ``ORCH_SECRETS`` does not hold."""


class SparkNotAvailable(DbutilsError, RuntimeError):
    """``spark`` was used but ``pyspark`` cannot be imported."""


class WorkflowException(DbutilsError):
    """A child notebook started by ``dbutils.notebook.run`` did not succeed."""

    def __init__(
        self, message: str, *, path: str, status: str, error: str, error_trace: str = ""
    ) -> None:
        super().__init__(message)
        self.path = path
        self.status = status
        self.error = error
        self.error_trace = error_trace


class NotebookExit(Exception):
    """Raised by ``dbutils.notebook.exit`` to stop the notebook after ``exit.json`` is written."""

    def __init__(self, value: str) -> None:
        super().__init__(f"Notebook exited: {value}")
        self.value = value


# --------------------------------------------------------------------------- configuration


class _Config:
    """The run's settings, read once from the ``ORCH_*`` environment variables.

    Secret values are held here and nowhere else; ``repr`` does not show them.
    """

    def __init__(self, environ: Mapping[str, str], cwd: str) -> None:
        self.notebook_path = environ.get("ORCH_NOTEBOOK_PATH", "")
        self.workspace_root = _abspath_or_empty(environ.get("ORCH_WORKSPACE_ROOT", ""))
        self.dbfs_root = _abspath_or_empty(environ.get("ORCH_DBFS_ROOT", ""))
        self.control_dir = environ.get("ORCH_CONTROL_DIR", "")
        self.python = environ.get("ORCH_PYTHON") or sys.executable
        self.pip_target = _abspath_or_empty(environ.get("ORCH_PIP_TARGET", ""))
        self.cwd = cwd
        self.run_id = environ.get("ORCH_RUN_ID", "")
        self.job_id = environ.get("ORCH_JOB_ID", "")
        self.params = _string_map(environ.get("ORCH_PARAMS", ""), "ORCH_PARAMS")
        self.task_values = _nested_string_map(
            environ.get("ORCH_TASK_VALUES", ""), "ORCH_TASK_VALUES", as_json=True
        )
        self.secrets = _nested_string_map(environ.get("ORCH_SECRETS", ""), "ORCH_SECRETS")

    def __repr__(self) -> str:
        return f"<local dbutils config for {self.notebook_path!r}>"


def _abspath_or_empty(path: str) -> str:
    return os.path.abspath(path) if path else ""  # noqa: PTH100 - string in, string out


def _load_json_object(text: str, variable: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DbutilsError(f"{variable} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DbutilsError(f"{variable} must be a JSON object")
    return value


def _string_map(text: str, variable: str) -> dict[str, str]:
    return {str(k): _as_str(v) for k, v in _load_json_object(text, variable).items()}


def _nested_string_map(text: str, variable: str, *, as_json: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for outer, inner in _load_json_object(text, variable).items():
        if not isinstance(inner, dict):
            raise DbutilsError(f"{variable}[{outer!r}] must be a JSON object")
        result[str(outer)] = {str(k): (v if as_json else _as_str(v)) for k, v in inner.items()}
    return result


def _as_str(value: Any) -> str:
    """Databricks passes parameters as strings; JSON scalars are turned into their text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


# --------------------------------------------------------------------------- path mapping


class _PathMapper:
    """Maps ``/Workspace/...`` and ``/dbfs/...`` to the local folders that hold them.

    ``map`` is on the path of every ``open``/``os.stat`` in the kernel, so its common case (a
    path outside both prefixes) is one ``str.startswith`` with a tuple.
    """

    __slots__ = ("_prefixes", "_roots")

    def __init__(self, roots: Mapping[str, str]) -> None:
        self._roots = {prefix: root.rstrip("/") or "/" for prefix, root in roots.items() if root}
        self._prefixes = tuple(self._roots)

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
_WRAPPED_MARK = "__orch_wrapped__"

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


def _mark(wrapper: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, _WRAPPED_MARK, True)
    return wrapper


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
    if user_ns is not None:
        # IPython puts its own ``open`` (refusing fds 0-2) into the user namespace.
        user_open = user_ns.get("open")
        if callable(user_open) and not getattr(user_open, _WRAPPED_MARK, False):
            user_ns["open"] = _wrap_open(user_open)


# --------------------------------------------------------------------------- widgets


class _Widget(NamedTuple):
    kind: str
    default: str
    choices: tuple[str, ...]
    label: str | None


class WidgetsUtil:
    """``dbutils.widgets``: input widgets, whose values in a job run come from its parameters.

    A run parameter wins over a widget's default, and is readable with ``get`` even when no
    widget of that name is defined. Defining a widget again replaces its definition.
    """

    def __init__(self, params: Mapping[str, str]) -> None:
        self._params = dict(params)
        self._widgets: dict[str, _Widget] = {}

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:
        """Creates a text input widget with a given name and default value."""
        self._define(name, "text", defaultValue, (), label)

    def dropdown(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        """Creates a dropdown input widget; the default value must be one of the choices."""
        options = self._choices(name, choices)
        if str(defaultValue) not in options:
            raise WidgetError(
                f"Default value {defaultValue!r} of dropdown widget {name!r} is not one of "
                f"the choices {list(options)!r}"
            )
        self._define(name, "dropdown", defaultValue, options, label)

    def combobox(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        """Creates a combobox input widget: the choices are suggestions, any value is valid."""
        self._define(name, "combobox", defaultValue, self._choices(name, choices), label)

    def multiselect(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        """Creates a multiselect input widget; ``get`` returns the selection comma-joined."""
        options = self._choices(name, choices)
        default = str(defaultValue)
        if default not in options and not all(part in options for part in default.split(",")):
            raise WidgetError(
                f"Default value {defaultValue!r} of multiselect widget {name!r} is not among "
                f"the choices {list(options)!r}"
            )
        self._define(name, "multiselect", default, options, label)

    def get(self, name: str) -> str:
        """Retrieves the current value of an input widget (the run parameter if passed)."""
        name = str(name)
        if name in self._params:
            return self._params[name]
        widget = self._widgets.get(name)
        if widget is None:
            raise InputWidgetNotDefined(name)
        return widget.default

    def getArgument(self, name: str, default: str | None = None) -> str | None:
        """Deprecated alias of ``get`` that returns ``default`` for an undefined widget."""
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return default

    def getAll(self) -> dict[str, str]:
        """Retrieves the values of all widgets and run parameters, as a dict."""
        values = {name: widget.default for name, widget in self._widgets.items()}
        values.update(self._params)
        return values

    def remove(self, name: str) -> None:
        """Removes an input widget from the notebook."""
        if self._widgets.pop(str(name), None) is None:
            raise InputWidgetNotDefined(str(name))

    def removeAll(self) -> None:
        """Removes all widgets in the notebook."""
        self._widgets.clear()

    def help(self, method: str | None = None) -> None:
        """Prints the widgets utility's methods."""
        _print_help(self, "dbutils.widgets", method)

    def _define(
        self, name: str, kind: str, default: Any, choices: tuple[str, ...], label: str | None
    ) -> None:
        if not isinstance(name, str) or not name:
            raise WidgetError("A widget name must be a non-empty string")
        self._widgets[name] = _Widget(kind, str(default), choices, label)

    @staticmethod
    def _choices(name: str, choices: Any) -> tuple[str, ...]:
        if isinstance(choices, str) or not hasattr(choices, "__iter__"):
            raise WidgetError(f"The choices of widget {name!r} must be a list of strings")
        options = tuple(str(choice) for choice in choices)
        if not options:
            raise WidgetError(f"Widget {name!r} needs at least one choice")
        return options

    def __repr__(self) -> str:
        return "<dbutils.widgets (local)>"


# --------------------------------------------------------------------------- fs


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


def _has_prefix(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


# --------------------------------------------------------------------------- secrets


class SecretMetadata(NamedTuple):
    """One entry of ``dbutils.secrets.list``."""

    key: str


class SecretScope(NamedTuple):
    """One entry of ``dbutils.secrets.listScopes``."""

    name: str

    def getName(self) -> str:
        return self.name


class _SecretStr(str):
    """A secret value: an ordinary ``str`` whose ``repr`` is redacted, as in Databricks."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'[REDACTED]'"


class _Redactor:
    """Replaces secret values read in this kernel with ``[REDACTED]`` in stdout and stderr.

    For ipykernel's streams the text is redacted where the stream hands its buffered text to
    the message sender (``OutStream._flush_buffers``): that also covers output of
    subprocesses the kernel forwards, and it survives IPython swapping the streams' ``write``
    around every cell. Other streams get a redacting ``write`` where they allow it.
    """

    def __init__(self) -> None:
        self._values: list[str] = []
        self._patched: set[int] = set()

    def add(self, value: str) -> None:
        if len(value) >= _MIN_REDACTED_LENGTH and value not in self._values:
            self._values.append(value)
            self._values.sort(key=len, reverse=True)  # longest first: overlapping secrets
        for stream in (sys.stdout, sys.stderr):
            self._patch(stream)

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, "[REDACTED]")
        return text

    def _patch(self, stream: Any) -> None:
        if stream is None or id(stream) in self._patched:
            return
        cls = type(stream)
        flush_buffers = getattr(cls, "_flush_buffers", None)
        if cls.__module__.startswith("ipykernel.") and callable(flush_buffers):
            if not getattr(flush_buffers, _WRAPPED_MARK, False):

                def redacting_flush_buffers(self: Any) -> Iterator[tuple[Any, Any]]:
                    for parent, data in flush_buffers(self):
                        yield parent, _REDACTOR.redact(data) if isinstance(data, str) else data

                cls._flush_buffers = _mark(redacting_flush_buffers, flush_buffers)
            self._patched.add(id(stream))
            return
        instance_write = stream.write

        def write(text: Any, *args: Any) -> Any:
            if isinstance(text, str):
                text = _REDACTOR.redact(text)
            return instance_write(text, *args)

        try:
            stream.write = write
        except (AttributeError, TypeError):
            return  # a stream that refuses attributes keeps printing unredacted
        self._patched.add(id(stream))


_REDACTOR = _Redactor()


class SecretsUtil:
    """``dbutils.secrets`` backed by ``ORCH_SECRETS`` ({scope: {key: value}})."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        self._secrets = secrets

    def get(self, scope: str, key: str) -> str:
        """Gets the string value of a secret; it is redacted from this notebook's output."""
        value = self._secrets.get(scope, {}).get(key)
        if value is None:
            raise SecretNotFound(f"Secret does not exist with scope: {scope} and key: {key}")
        _REDACTOR.add(value)
        return _SecretStr(value)

    def getBytes(self, scope: str, key: str) -> bytes:
        """Gets the bytes of a secret (its UTF-8 encoding)."""
        return str.__str__(self.get(scope, key)).encode("utf-8")

    def list(self, scope: str) -> list[SecretMetadata]:
        """Lists the keys of a scope."""
        if scope not in self._secrets:
            raise SecretNotFound(f"Scope {scope} does not exist!")
        return [SecretMetadata(key) for key in sorted(self._secrets[scope])]

    def listScopes(self) -> builtins.list[SecretScope]:
        """Lists the secret scopes."""
        return [SecretScope(name) for name in sorted(self._secrets)]

    def help(self, method: str | None = None) -> None:
        """Prints the secrets utility's methods."""
        _print_help(self, "dbutils.secrets", method)

    def __repr__(self) -> str:
        return "<dbutils.secrets (local)>"


# --------------------------------------------------------------------------- notebook


class _Option:
    """The little of Scala's ``Option`` that notebooks call on context values."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def get(self) -> Any:
        if self._value is None:
            raise DbutilsError("None.get")
        return self._value

    def isDefined(self) -> bool:
        return self._value is not None

    def isEmpty(self) -> bool:
        return self._value is None

    def getOrElse(self, default: Any) -> Any:
        return default if self._value is None else self._value

    def __repr__(self) -> str:
        return "None" if self._value is None else f"Some({self._value})"


class _Tags:
    """Context tags, with Scala ``Map``'s ``apply``/``get``/``contains``."""

    def __init__(self, tags: Mapping[str, str]) -> None:
        self._tags = dict(tags)

    def apply(self, key: str) -> str:
        if key not in self._tags:
            raise KeyError(f"key not found: {key}")
        return self._tags[key]

    def get(self, key: str) -> _Option:
        return _Option(self._tags.get(key))

    def contains(self, key: str) -> bool:
        return key in self._tags

    def __repr__(self) -> str:
        return f"Map({', '.join(f'{k} -> {v}' for k, v in self._tags.items())})"


class NotebookContext:
    """What ``getContext()`` returns: the notebook's path, run ids and tags."""

    def __init__(self, config: _Config) -> None:
        self._config = config

    def notebookPath(self) -> _Option:
        return _Option(self._config.notebook_path or None)

    def currentRunId(self) -> _Option:
        return _Option(self._config.run_id or None)

    def userName(self) -> _Option:
        return _Option(self._user())

    def tags(self) -> _Tags:
        return _Tags(self._tag_dict())

    def toJson(self) -> str:
        return json.dumps(
            {
                "extraContext": {"notebook_path": self._config.notebook_path},
                "tags": self._tag_dict(),
                "currentRunId": self._config.run_id or None,
            }
        )

    safeToJson = toJson

    def _user(self) -> str | None:
        parts = self._config.notebook_path.split("/")
        return parts[2] if len(parts) > 2 and parts[1] == "Users" and parts[2] else None

    def _tag_dict(self) -> dict[str, str]:
        tags = {"notebookPath": self._config.notebook_path, "clusterId": "local"}
        user = self._user()
        if user:
            tags["user"] = user
        if self._config.job_id:
            tags["jobId"] = self._config.job_id
        if self._config.run_id:
            tags["runId"] = self._config.run_id
        return tags

    def __repr__(self) -> str:
        return f"<notebook context {self._config.notebook_path!r}>"


class _EntryPointNotebook:
    def __init__(self, context: NotebookContext) -> None:
        self._context = context

    def getContext(self) -> NotebookContext:
        return self._context


class _EntryPointDbutils:
    def __init__(self, context: NotebookContext) -> None:
        self._notebook = _EntryPointNotebook(context)

    def notebook(self) -> _EntryPointNotebook:
        return self._notebook


class _EntryPoint:
    """``dbutils.notebook.entry_point``: the calls notebooks make through py4j."""

    def __init__(self, context: NotebookContext, params: Mapping[str, str]) -> None:
        self._dbutils = _EntryPointDbutils(context)
        self._params = dict(params)

    def getDbutils(self) -> _EntryPointDbutils:
        return self._dbutils

    def getCurrentBindings(self) -> dict[str, str]:
        return dict(self._params)


class NotebookUtil:
    """``dbutils.notebook``: exit with a value, run another notebook, the context."""

    def __init__(self, config: _Config) -> None:
        self._config = config
        self._context = NotebookContext(config)
        self.entry_point = _EntryPoint(self._context, config.params)

    def exit(self, value: Any) -> None:
        """Ends the notebook with ``value`` (as a string) as its exit value."""
        text = str(value)
        if not self._config.control_dir:
            raise DbutilsError("ORCH_CONTROL_DIR is not set: cannot record the exit value")
        _write_json_atomic(Path(self._config.control_dir) / "exit.json", {"value": text})
        raise NotebookExit(text)

    def run(
        self, path: str, timeout_seconds: int = 0, arguments: Mapping[str, Any] | None = None
    ) -> str:
        """Runs a notebook and returns its exit value; raises WorkflowException if it fails."""
        import secrets
        import subprocess

        target = _resolve_notebook_path(str(path), self._config.notebook_path)
        args = {str(k): v if isinstance(v, str) else str(v) for k, v in (arguments or {}).items()}
        control = Path(self._config.control_dir or os.getcwd())  # noqa: PTH109
        stem = f"child-{os.getpid()}-{secrets.token_hex(6)}"
        result_file = control / f"{stem}.json"
        log_file = control / f"{stem}.log"
        command = [
            self._config.python,
            "-m",
            "orchestrator.local.runtime.child",
            "--path",
            target,
            "--timeout",
            str(int(timeout_seconds or 0)),
            "--args",
            json.dumps(args),
            "--result-file",
            str(result_file),
        ]
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                returncode = process.wait()
            except BaseException:  # interrupted: stop the child run with us
                _stop_process(process)
                raise
        try:
            result = json.loads(result_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            tail = _tail(log_file, 2000)
            raise WorkflowException(
                f"FAILED: the child run of {target} ended (exit code {returncode}) without a "
                f"result{': ' + tail if tail else ''}",
                path=target,
                status="FAILED",
                error=tail,
            ) from None
        finally:
            result_file.unlink(missing_ok=True)
        log_file.unlink(missing_ok=True)
        status = str(result.get("status") or "FAILED")
        if status == "SUCCESS":
            value = result.get("exit_value")
            return "" if value is None else str(value)
        error = str(result.get("error") or "")
        trace = str(result.get("error_trace") or "")
        message = f"{status}: {error or 'the notebook did not succeed'} (notebook {target})"
        if trace:
            message += "\n\nChild notebook traceback:\n" + trace[-_CHILD_TRACE_CHARS:]
        raise WorkflowException(message, path=target, status=status, error=error, error_trace=trace)

    def getContext(self) -> NotebookContext:
        """The notebook's context (path, run id, tags)."""
        return self._context

    def help(self, method: str | None = None) -> None:
        """Prints the notebook utility's methods."""
        _print_help(self, "dbutils.notebook", method)

    def __repr__(self) -> str:
        return "<dbutils.notebook (local)>"


def _resolve_notebook_path(path: str, current: str) -> str:
    """Make a ``dbutils.notebook.run`` path absolute, without the ``/Workspace`` prefix."""
    if _has_prefix(path, _WORKSPACE):
        path = path[len(_WORKSPACE) :] or "/"
    if not path.startswith("/"):
        base = current[len(_WORKSPACE) :] if _has_prefix(current, _WORKSPACE) else current
        path = posixpath.join(posixpath.dirname(base) or "/", path)
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/")


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    import subprocess

    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(path: Path, chars: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-chars:].strip()


def _write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- library, jobs


class LibraryUtil:
    """``dbutils.library``: only ``restartPython``, as the local equivalent."""

    def __init__(self, config: _Config) -> None:
        self._config = config

    def restartPython(self) -> None:
        """Makes packages installed with %pip importable.

        The local workspace does not restart the Python process: it puts the notebook's
        package folder first on ``sys.path`` and refreshes the import caches. Modules
        already imported keep their old version.
        """
        _prepare_sys_path(self._config)

    def help(self, method: str | None = None) -> None:
        """Prints the library utility's methods."""
        _print_help(self, "dbutils.library", method)

    def __repr__(self) -> str:
        return "<dbutils.library (local)>"


class TaskValuesUtil:
    """``dbutils.jobs.taskValues``: values set are written to ``task_values.json``.

    ``get`` reads values of upstream tasks from ``ORCH_TASK_VALUES`` when the runner provides
    them, else returns ``default`` (or ``debugValue``).
    """

    def __init__(self, config: _Config) -> None:
        self._config = config
        self._values: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        """Sets a task value on the current task run (JSON-serializable)."""
        json.dumps(value)  # refuse what Databricks refuses, now rather than later
        self._values[str(key)] = value
        if self._config.control_dir:
            _write_json_atomic(Path(self._config.control_dir) / "task_values.json", self._values)

    def get(
        self,
        taskKey: str,
        key: str,
        default: Any = None,
        debugValue: Any = None,
    ) -> Any:
        """Returns a value an upstream task set, else ``default``."""
        task = self._config.task_values.get(taskKey, {})
        if key in task:
            return task[key]
        if default is not None:
            return default
        if debugValue is not None:
            return debugValue
        raise DbutilsError(f"No task value {key!r} for task {taskKey!r} and no default")

    def help(self, method: str | None = None) -> None:
        """Prints the task values utility's methods."""
        _print_help(self, "dbutils.jobs.taskValues", method)


class JobsUtil:
    """``dbutils.jobs``."""

    def __init__(self, config: _Config) -> None:
        self.taskValues = TaskValuesUtil(config)

    def help(self, method: str | None = None) -> None:
        """Prints the jobs utility's members."""
        print("dbutils.jobs.taskValues: set(key, value), get(taskKey, key, default, debugValue)")


# --------------------------------------------------------------------------- dbutils


class DBUtils:
    """The local workspace's ``dbutils``: fs, notebook, secrets, widgets, library, jobs."""

    def __init__(self, config: _Config, mapper: _PathMapper) -> None:
        self.fs = FsUtil(config, mapper)
        self.notebook = NotebookUtil(config)
        self.secrets = SecretsUtil(config.secrets)
        self.widgets = WidgetsUtil(config.params)
        self.library = LibraryUtil(config)
        self.jobs = JobsUtil(config)

    def help(self) -> None:
        """Prints the utilities this dbutils provides."""
        print(
            "dbutils (local workspace) provides:\n"
            "  fs: ls, cp, mv, rm, mkdirs, put, head\n"
            "  notebook: exit, run, getContext, entry_point\n"
            "  secrets: get, getBytes, list, listScopes\n"
            "  widgets: text, dropdown, combobox, multiselect, get, getArgument, getAll,"
            " remove, removeAll\n"
            "  library: restartPython\n"
            "  jobs: taskValues.set, taskValues.get\n"
            "Use dbutils.<utility>.help() for details."
        )

    def __repr__(self) -> str:
        return "<dbutils (local workspace)>"


def _print_help(util: object, title: str, method: str | None) -> None:
    names = [n for n in dir(util) if not n.startswith("_") and callable(getattr(util, n))]
    if method is not None:
        if method not in names:
            print(f"{title} has no method {method!r}")
            return
        names = [method]
    print(f"{title} (local workspace):")
    for name in names:
        doc = (getattr(util, name).__doc__ or "").strip().splitlines()
        print(f"  {name}: {doc[0] if doc else ''}")


# --------------------------------------------------------------------------- display


def display(obj: Any = None, *args: Any, **kwargs: Any) -> None:
    """Shows a table for a DataFrame or a list of rows, else the object's rich repr.

    pandas-like objects (``to_html``) and pyspark DataFrames (first 1000 rows) become HTML
    tables, as does a list of dicts or of ``Row``s. Extra arguments are accepted and ignored.
    """
    from IPython.display import display as ipython_display

    table = _as_table(obj)
    if table is None:
        ipython_display(obj)  # type: ignore[no-untyped-call, unused-ignore]
        return
    html_text, plain = table
    ipython_display(  # type: ignore[no-untyped-call, unused-ignore]
        {"text/html": html_text, "text/plain": plain}, raw=True
    )


def displayHTML(html: str) -> None:
    """Shows ``html`` as the cell's output."""
    from IPython.display import display as ipython_display

    ipython_display({"text/html": str(html)}, raw=True)  # type: ignore[no-untyped-call, unused-ignore]


def _as_table(obj: Any) -> tuple[str, str] | None:
    if _is_spark_dataframe(obj):
        limited = obj.limit(_MAX_DISPLAY_ROWS)
        try:
            return _pandas_table(limited.toPandas())
        except ImportError:  # pyspark needs pandas for toPandas
            rows = [row.asDict() for row in limited.collect()]
            return _html_table(list(obj.columns), [[r.get(c) for c in obj.columns] for r in rows])
    if not isinstance(obj, type) and callable(getattr(obj, "to_html", None)):
        return _pandas_table(obj)
    if isinstance(obj, list | tuple) and obj and all(_is_record(row) for row in obj):
        records = [row.asDict() if hasattr(row, "asDict") else dict(row) for row in obj]
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(map(str, record)))
        rows = [[record.get(c) for c in columns] for record in records[:_MAX_DISPLAY_ROWS]]
        return _html_table(list(columns), rows)
    return None


def _is_spark_dataframe(obj: Any) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("pyspark.") and all(
        hasattr(obj, name) for name in ("limit", "toPandas", "collect", "columns")
    )


def _is_record(row: Any) -> bool:
    return isinstance(row, Mapping) or (callable(getattr(row, "asDict", None)))


def _pandas_table(frame: Any) -> tuple[str, str]:
    try:
        html_text = frame.to_html(max_rows=_MAX_DISPLAY_ROWS)
    except TypeError:
        html_text = frame.to_html()
    return str(html_text), repr(frame)


def _html_table(columns: list[str], rows: list[list[Any]]) -> tuple[str, str]:
    import html

    def cell(value: Any) -> str:
        return "null" if value is None else str(value)

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    html_text = (
        '<table border="1" class="dataframe">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    lines = ["\t".join(map(str, columns))]
    lines += ["\t".join(cell(v) for v in row) for row in rows[:20]]
    if len(rows) > 20:
        lines.append(f"... ({len(rows)} rows)")
    return html_text, "\n".join(lines)


# --------------------------------------------------------------------------- spark


class _SparkProxy:
    """``spark``: creates a ``local[1]`` SparkSession on first use, if pyspark is there.

    Names IPython probes for (``_repr_*_``, ``_ipython_*``, dunders) are answered without
    starting Spark, so showing or completing ``spark`` stays cheap.
    """

    def __init__(self, config: _Config) -> None:
        self._config = config
        self._session: Any = None

    def _get_session(self) -> Any:
        if self._session is None:
            import importlib
            import importlib.util

            importlib.invalidate_caches()
            if importlib.util.find_spec("pyspark") is None:
                raise SparkNotAvailable(_SPARK_MISSING)
            from pyspark.sql import SparkSession  # type: ignore[import-not-found, unused-ignore]

            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            name = posixpath.basename(self._config.notebook_path) or "notebook"
            builder = SparkSession.builder.master("local[1]").appName(name)
            settings = {
                "spark.ui.enabled": "false",
                "spark.sql.shuffle.partitions": "1",
                "spark.sql.session.timeZone": "Etc/UTC",
            }
            if self._config.dbfs_root:
                settings["spark.sql.warehouse.dir"] = posixpath.join(
                    self._config.dbfs_root, "user/hive/warehouse"
                )
            for key, value in settings.items():
                builder = builder.config(key, value)
            self._session = builder.getOrCreate()
        return self._session

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython_")):
            raise AttributeError(name)
        return getattr(self._get_session(), name)

    def __repr__(self) -> str:
        if self._session is None:
            return "<SparkSession (local; created on first use)>"
        return repr(self._session)


class _SparkContextProxy:
    """``sc``: the SparkContext of ``spark``, resolved on first use."""

    def __init__(self, spark: _SparkProxy) -> None:
        self._spark = spark

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("__", "_repr_", "_ipython_")):
            raise AttributeError(name)
        return getattr(self._spark.sparkContext, name)

    def __repr__(self) -> str:
        return "<SparkContext (local; created on first use)>"


# --------------------------------------------------------------------------- install


def _prepare_sys_path(config: _Config) -> None:
    """Put the notebook folder, then the %pip target, in front of ``sys.path``."""
    import importlib

    if config.pip_target:
        Path(config.pip_target).mkdir(parents=True, exist_ok=True)
    for entry in (config.pip_target, config.cwd):
        if entry:
            sys.path[:] = [p for p in sys.path if p != entry]
    for entry in (config.pip_target, config.cwd):
        if entry:
            sys.path.insert(0, entry)
    if config.pip_target and any(p.suffix == ".pth" for p in Path(config.pip_target).iterdir()):
        import site

        site.addsitedir(config.pip_target)  # .pth files of installed packages
    importlib.invalidate_caches()


def _exit_handler(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> list[str]:
    """IPython custom exception handler for :class:`NotebookExit`: no output at all.

    The executor reports the exit itself ("Notebook exited: <value>") when it finds
    ``exit.json`` after the cell.
    """
    return []


def install(ipython: Any) -> None:
    """Set up the Databricks notebook globals in ``ipython`` (an IPython shell).

    Reads the ``ORCH_*`` environment variables, prepares ``sys.path``, installs the
    ``/Workspace``/``/dbfs`` path mapping and pushes ``dbutils``, ``display``,
    ``displayHTML``, ``spark``, ``sc`` and ``getArgument`` into the user namespace. With
    ``ipython=None`` only the process-wide parts are set up.
    """
    config = _Config(os.environ, os.getcwd())  # noqa: PTH109
    _prepare_sys_path(config)
    mapper = _PathMapper({_WORKSPACE: config.workspace_root, _DBFS: config.dbfs_root})
    user_ns: dict[str, Any] | None = getattr(ipython, "user_ns", None)
    _install_path_hooks(mapper, user_ns)
    dbutils = DBUtils(config, mapper)
    spark = _SparkProxy(config)
    names: dict[str, Any] = {
        "dbutils": dbutils,
        "display": display,
        "displayHTML": displayHTML,
        "spark": spark,
        "sc": _SparkContextProxy(spark),
        "getArgument": dbutils.widgets.getArgument,
    }
    if ipython is not None:
        ipython.push(names, interactive=False)
        ipython.set_custom_exc((NotebookExit,), _exit_handler)
