"""Spark reader and writer paths as ``dbutils.fs`` reads them, and CSV headers as Spark reads them.

This module owns the patches of Spark Connect's ``DataFrameReader`` and ``DataFrameWriter``
that map path arguments (``dbfs:/x``, ``/x``, ``/dbfs/x`` and ``/Volumes/...`` in the local
DBFS root, ``/Workspace/x`` in the workspace root, ``file:/x`` is ``/x``; other URLs pass
through), refuse a local path that does not exist when reading (``[PATH_NOT_FOUND]``, as
Spark does; Sail would return no rows), and hand the engine copies of ``header=True`` CSV files
whose header Spark would rename (:mod:`.csv_headers`). Paths inside SQL text are not mapped.

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .csv_headers import safe_copies
from .sql_events import record

__all__ = ["map_path", "patch_paths", "set_path_mapper"]

_PATHS: dict[str, Callable[[str], str]] = {}
_DEPTH: dict[int, int] = {}  # nesting of wrapped reader/writer calls (notebook code: one thread)


def set_path_mapper(mapper: Callable[[str], str]) -> None:
    _PATHS["map"] = mapper


def map_path(value: Any) -> Any:
    """A path (or list of paths) as the engine sees it."""
    mapper = _PATHS.get("map")
    if mapper is None:
        return value
    if isinstance(value, str):
        return mapper(value)
    if isinstance(value, list | tuple):
        return type(value)(mapper(v) if isinstance(v, str) else v for v in value)
    return value


def _wrap_path_method(
    original: Callable[..., Any], *, every_arg: bool, reads: bool
) -> Callable[..., Any]:
    """Map the path arguments of a reader/writer method, in the outermost call only
    (``csv`` calls ``load``: a path must not be mapped twice). A reader refuses a local path
    that does not exist, as Spark does (Sail would return no rows)."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _DEPTH.get(0, 0) == 0:
            given = list(args if every_arg else args[:1])
            given += [kwargs[k] for k in ("path", "paths") if kwargs.get(k) is not None]
            if every_arg:  # reader.parquet(*paths)
                args = tuple(map_path(a) for a in args)
            elif args:
                args = (map_path(args[0]), *args[1:])
            for key in ("path", "paths"):
                if key in kwargs:
                    kwargs[key] = map_path(kwargs[key])
            if reads:
                _check_exists(given)
        _DEPTH[0] = _DEPTH.get(0, 0) + 1
        try:
            return original(self, *args, **kwargs)
        finally:
            _DEPTH[0] -= 1

    return wrapper


def _check_exists(paths: list[Any]) -> None:
    for path in paths:
        for one in path if isinstance(path, list | tuple) else [path]:
            if not isinstance(one, str) or any(c in one for c in "*?[{"):
                continue
            local = map_path(one)
            if local.startswith("/") and not os.path.exists(local):  # noqa: PTH110
                from pyspark.errors import AnalysisException  # type: ignore[import-not-found, unused-ignore]

                raise AnalysisException(message=f"[PATH_NOT_FOUND] Path does not exist: {one}.")


def _wrap_option(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def option(self: Any, key: str, value: Any) -> Any:
        return original(self, key, map_path(value) if str(key).lower() == "path" else value)

    return option


def _safe_csv_load(original: Callable[..., Any]) -> Callable[..., Any]:
    """``load`` that reads ``header=True`` CSV files through copies with Spark's header names
    when their header repeats or omits a name (innermost: the paths are mapped already)."""

    @functools.wraps(original)
    def load(
        self: Any, path: Any = None, format: Any = None, schema: Any = None, **options: Any
    ) -> Any:
        if format is not None:
            self.format(format)
        if schema is not None:
            self.schema(schema)
        self.options(**options)
        fmt = str(self._format or "").lower()
        if fmt == "csv" and path is not None and not self._schema:
            paths = [path] if isinstance(path, str) else list(path)
            copies = safe_copies(
                [str(p) for p in paths], dict(self._options), folder=_copies_folder()
            )
            if copies is not None:
                record("emulated", "CSV header names made unique as Spark does (a renamed copy)")
                path = copies
        return original(self, path=path)

    return load


def _copies_folder() -> Path | None:
    """Where CSV copies live: beside the cluster's warehouse, in the workspace's state dir,
    so that views over them outlive the kernel that made them (its own folders go with it)."""
    warehouse = os.environ.get("ORCH_SPARK_WAREHOUSE", "")
    return Path(warehouse).parent / "csv-headers" if warehouse else None


def patch_paths() -> None:
    """Patch Spark Connect's reader and writer (once)."""
    from pyspark.sql.connect import readwriter  # type: ignore[import-not-found, unused-ignore]

    if getattr(readwriter.DataFrameReader, "__orch_patched__", False):
        return
    reader = readwriter.DataFrameReader
    setattr(reader, "load", _safe_csv_load(reader.load))  # noqa: B010 - a class of pyspark's
    reader_methods = ("load", "csv", "json", "parquet", "orc", "text")
    writer_methods = ("save", "csv", "json", "parquet", "orc", "text")
    for cls, names in (
        (reader, reader_methods),
        (readwriter.DataFrameWriter, writer_methods),
    ):
        for name in names:
            if hasattr(cls, name):
                reads = cls is reader
                wrapped = _wrap_path_method(
                    getattr(cls, name), every_arg=reads and name == "parquet", reads=reads
                )
                setattr(cls, name, wrapped)
        setattr(cls, "option", _wrap_option(cls.option))  # noqa: B010 - a class of pyspark's
        setattr(cls, "__orch_patched__", True)  # noqa: B010
