"""Atomic file writes (pypa/build's habit): a temporary file in the target's folder, then
``os.replace``, so a reader (a CI publishing step, a notebook) never sees half a file.

:func:`atomic_path` is the one implementation; :func:`atomic_writer` and
:func:`write_atomically` (reports) are built on it, and so are the local folder storage's
uploads and the ADLS storage's downloads.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_path", "atomic_writer", "write_atomically"]


@contextmanager
def atomic_path(target: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """A new empty temporary file (mode 0600) beside ``target`` to fill; when the block ends
    without an error it becomes ``target``, else it is removed. ``target``'s folder is created.

    With ``overwrite`` off the file is published by a hard link, which raises
    :class:`FileExistsError` when ``target`` exists: nothing is ever overwritten, even when two
    processes publish the same name at once.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # a shortened name: the temporary one must fit the file system's limit as the target does
    prefix = f".{target.name[:100]}."
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".tmp")
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
    target: Path, *, mode: int | None = None, fsync: bool = False
) -> Iterator[BinaryIO]:
    """A binary stream whose bytes replace ``target`` at once when the block ends without an
    error (see :func:`atomic_path`). ``mode`` sets the file's permissions (default 0600);
    ``fsync`` flushes the data to disk before the rename."""
    with atomic_path(target) as temporary:
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
