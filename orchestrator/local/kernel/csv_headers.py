"""CSV headers named as Spark names them: duplicates and blanks renamed.

Spark reads ``header=True`` CSV files whose header repeats a name (or leaves one blank) by
renaming those columns (``CSVUtils.makeSafeHeader``): a blank name, or the ``nullValue``,
becomes ``_c<index>``; every name that occurs more than once (case-insensitively, as
``spark.sql.caseSensitive`` is false by default) becomes ``<name><index>``, the first
occurrence included (``a,b,a`` -> ``a0,b,a2``). Sail instead merges or miscounts such
columns. So before the engine reads such files, the kernel gives it copies whose first line
holds Spark's names (:func:`safe_copies`); files whose header needs no renaming are read as
they are.

It runs inside user kernels: standard library only.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["safe_copies", "safe_header"]


def safe_header(
    names: Sequence[str | None], *, case_sensitive: bool = False, null_value: str = ""
) -> list[str]:
    """The column names Spark gives a CSV header row."""
    keys = [n if case_sensitive else n.lower() for n in names if n is not None]
    duplicates = {k for k in keys if keys.count(k) > 1}
    safe = []
    for index, name in enumerate(names):
        if name is None or name == "" or name == null_value:
            safe.append(f"_c{index}")
        elif (name if case_sensitive else name.lower()) in duplicates:
            safe.append(f"{name}{index}")
        else:
            safe.append(name)
    return safe


def _option(options: Mapping[str, str], *names: str, default: str = "") -> str:
    lowered = {k.lower(): v for k, v in options.items()}
    for name in names:
        if name.lower() in lowered:
            return str(lowered[name.lower()])
    return default


def _files(paths: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        wildcard = any(c in path for c in "*?[")
        matches = glob.glob(path) if wildcard else [path]  # noqa: PTH207 - absolute patterns
        for match in sorted(matches):
            candidate = Path(match)
            if candidate.is_dir():
                found += sorted(
                    p
                    for p in candidate.iterdir()
                    if p.is_file() and not p.name.startswith(("_", "."))
                )
            elif candidate.is_file():
                found.append(candidate)
    return found


def safe_copies(
    paths: Sequence[str], options: Mapping[str, str], *, folder: Path | None = None
) -> list[str] | None:
    """Local copies of ``paths`` (files, folders or globs) with Spark's header names, when a
    header needs renaming, in a folder of ``folder`` (the system's temporary folder when
    None); None when every header is fine (or a file cannot be read here: the engine then
    reads and reports it). Only plain local files are rewritten. The copies must outlive the
    kernel: a view or a global temporary view reads them when it is queried."""
    if _option(options, "header", default="false").lower() != "true":
        return None
    files = _files(paths)
    if not files or any(f.suffix in (".gz", ".bz2", ".zst", ".snappy") for f in files):
        return None
    delimiter = _option(options, "sep", "delimiter", default=",") or ","
    quote = _option(options, "quote", default='"') or '"'
    encoding = _option(options, "encoding", "charset", default="utf-8")
    null_value = _option(options, "nullValue", default="")
    dialect = {"delimiter": delimiter[0], "quotechar": quote[0]}
    headers: list[tuple[Path, list[str], int]] = []
    renamed = False
    for file in files:
        try:
            with file.open(encoding=encoding, newline="") as handle:
                reader = csv.reader(handle, **dialect)  # type: ignore[arg-type]
                names = next(reader, None)
                consumed = reader.line_num
        except (OSError, UnicodeDecodeError, csv.Error, LookupError):
            return None
        if names is None:
            continue
        safe = safe_header(names, null_value=null_value)
        renamed = renamed or safe != names
        headers.append((file, safe, consumed))
    if not renamed:
        return None
    stamp = "\0".join(f"{f}\0{f.stat().st_size}\0{f.stat().st_mtime_ns}" for f in files)
    key = hashlib.sha256(stamp.encode()).hexdigest()[:20]
    root = folder or Path(tempfile.gettempdir()) / "orch-csv"
    target = root / key
    names = [f"{number:05d}-{file.name}" for number, (file, _, _) in enumerate(headers)]
    if not target.is_dir():  # the same files, unchanged: copied already
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        for name, (file, safe, consumed) in zip(names, headers, strict=True):
            _copy(file, staging / name, safe, consumed, encoding, dialect)
        try:
            staging.rename(target)
        except OSError:  # another kernel made it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return [str(target / name) for name in names]


def _copy(
    file: Path, copy: Path, safe: list[str], consumed: int, encoding: str, dialect: dict[str, str]
) -> None:
    with (
        file.open(encoding=encoding, newline="") as source,
        copy.open("w", encoding=encoding, newline="") as out,
    ):
        csv.writer(out, lineterminator="\n", **dialect).writerow(safe)  # type: ignore[arg-type]
        for _ in range(consumed):
            source.readline()
        shutil.copyfileobj(source, out)
