"""Atomic file writes (pypa/build's habit): a temporary file in the target's folder, then
``os.replace``, so a reader (a CI publishing step, a notebook) never sees half a file.

:func:`atomic_path` is the one implementation; :func:`atomic_writer`,
:func:`write_atomically` (reports) and :func:`write_json_atomically` (state files) are built on
it, and so are the local folder storage's uploads, the ADLS storage's downloads and every
write of the local workspace's state (imports, outputs, caches). The code that runs inside
notebook kernels (``orchestrator.local.kernel``) imports nothing from the package and has one
JSON writer of its own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_path", "atomic_writer", "write_atomically", "write_json_atomically"]


@contextmanager
def atomic_path(
    target: Path, *, overwrite: bool = True, tmp_dir: Path | None = None
) -> Iterator[Path]:
    """A new empty temporary file (mode 0600) beside ``target`` to fill; when the block ends
    without an error it becomes ``target``, else it is removed. ``target``'s folder is created.
    ``tmp_dir`` puts the temporary file there instead (on the same file system), where a
    reader of ``target``'s folder cannot see it.

    With ``overwrite`` off the file is published by a hard link, which raises
    :class:`FileExistsError` when ``target`` exists: nothing is ever overwritten, even when two
    processes publish the same name at once.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # a shortened name: the temporary one must fit the file system's limit as the target does
    prefix = f".{target.name[:100]}."
    fd, name = tempfile.mkstemp(dir=tmp_dir or target.parent, prefix=prefix, suffix=".tmp")
    os.close(fd)
    temporary = Path(name)
    replaced = False
    try:
        yield temporary
        if overwrite:
            temporary.replace(target)
            replaced = True
        else:
            os.link(temporary, target)
    finally:
        if not replaced:
            temporary.unlink(missing_ok=True)


@contextmanager
def atomic_writer(
    target: Path, *, mode: int | None = None, fsync: bool = False, tmp_dir: Path | None = None
) -> Iterator[BinaryIO]:
    """A binary stream whose bytes replace ``target`` at once when the block ends without an
    error (see :func:`atomic_path`). ``mode`` sets the file's permissions (default 0600);
    ``fsync`` flushes the data to disk before the rename."""
    with atomic_path(target, tmp_dir=tmp_dir) as temporary:
        with temporary.open("wb") as stream:
            yield stream
            if fsync:
                stream.flush()
                os.fsync(stream.fileno())
        if mode is not None:
            temporary.chmod(mode)


def write_atomically(output: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``output`` atomically and durably; readable by all by default."""
    with atomic_writer(output, mode=mode, fsync=True) as stream:
        stream.write(data)


def write_json_atomically(output: Path, data: object, *, mode: int | None = None) -> None:
    """``data`` as JSON in ``output``, atomically (not flushed to disk: state, not reports)."""
    import json

    with atomic_writer(output, mode=mode) as stream:
        stream.write(json.dumps(data).encode("utf-8"))
