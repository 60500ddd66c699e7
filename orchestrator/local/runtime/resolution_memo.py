"""Recent resolutions of ``%pip install`` requirements: :class:`ResolutionMemo`.

A repeated ``%pip install -r requirements.txt`` with unchanged requirements resolves to the
same pins, and the environment cache (:mod:`.env_cache`) then links the environment built
for them. What is left of its time is the resolution itself: ``uv pip compile`` asks the
index for every package's page again. Against PyPI uv answers that from its cache, as PyPI
serves those pages with ``Cache-Control: max-age=600`` (ten minutes); a registry proxy that
sends no cache headers makes uv fetch them all again (0.4 s of a 1 s repeat here).

So a resolution is remembered for a short window (:data:`DEFAULT_TTL`, PyPI's own ten
minutes; ``ORCHESTRATOR_LOCAL_RESOLUTION_TTL`` seconds, 0 to turn it off), keyed by all that
decides it: the requirement lines and the content of every requirements or constraints file
they name, the index options and index variables, and the interpreter. Within the window a
repeat takes the remembered pins without asking the index. The price is the one uv pays
against PyPI itself: a release of an unpinned package made within the window is seen once
the window has passed, not at once. ``--upgrade``/``--force-reinstall`` always resolve
again, and so does anything whose content a name does not fix (a local path, a URL, VCS, an
editable install, ``--find-links``, a requirements file that names further files or
options): for those the memo is never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "DEFAULT_TTL",
    "TTL_VARIABLE",
    "ResolutionMemo",
    "configured_ttl",
    "memo_key",
]

#: seconds a resolution is reused: PyPI's ``max-age`` for its index pages
DEFAULT_TTL = 600.0
TTL_VARIABLE = "ORCHESTRATOR_LOCAL_RESOLUTION_TTL"
#: the install options that ask for a fresh resolution whatever was resolved before
_FRESH = frozenset({"--upgrade", "--reinstall"})
#: index options whose value is an address (its pages are the index's, in the window)
_ADDRESSED = frozenset({"--index-url", "--extra-index-url"})


def configured_ttl(environ: Mapping[str, str]) -> float:
    """The window from ``ORCHESTRATOR_LOCAL_RESOLUTION_TTL`` (seconds; 0 turns the memo off)."""
    raw = environ.get(TTL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_TTL
    try:
        return max(0.0, float(raw))
    except ValueError:
        return DEFAULT_TTL


def _fixed_by_name(line: str) -> bool:
    """Whether a requirement line means the same thing wherever and whenever it is read: a
    name with a specifier, not a path, URL, VCS reference or option."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return True
    if text.startswith("-") or "@" in text or "/" in text or "\\" in text:
        return False
    return not text.endswith((".whl", ".tar.gz", ".zip"))


def _file_text(path: Path) -> str | None:
    """A requirements file's text when every line of it is fixed by name, else None."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if all(_fixed_by_name(line) for line in text.splitlines()) else None


def memo_key(
    requirements: Sequence[str],
    options: Sequence[str],
    install_only: Sequence[str],
    *,
    python: str,
    index_env: Mapping[str, str],
) -> str | None:
    """The key of a resolution, or None when it must not be remembered (see the module)."""
    if _FRESH & set(install_only):
        return None
    files: dict[str, str] = {}
    for line in requirements:
        if line.startswith("-r "):
            path = Path(line[3:].strip())
            text = _file_text(path)
            if text is None:
                return None
            files[str(path)] = text
        elif not _fixed_by_name(line):
            return None
    kept: list[str] = []
    pairs = iter(options)
    for option in pairs:
        if option == "--find-links":
            return None
        if option == "--constraint":
            path = Path(next(pairs))
            text = _file_text(path)
            if text is None:
                return None
            files[f"-c {path}"] = text
        elif option in _ADDRESSED:
            kept += [option, next(pairs)]
        else:
            kept.append(option)
    facts = {
        "requirements": list(requirements),
        "files": files,
        "options": kept,
        "python": os.path.realpath(python),
        "index": dict(sorted(index_env.items())),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


class ResolutionMemo:
    """Resolutions (pinned requirement lines) under ``<root>/resolutions/<key>.txt``, the
    file's modification time being when it was resolved; an entry older than ``ttl`` is
    gone (deleted when the next one is written)."""

    def __init__(
        self, root: Path, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = root / "resolutions"
        self.ttl = ttl
        self.clock = clock

    def recall(self, key: str) -> list[str] | None:
        """The pins resolved for ``key`` within the window, or None."""
        if self.ttl <= 0:
            return None
        path = self.root / f"{key}.txt"
        try:
            age = self.clock() - path.stat().st_mtime
            if not 0 <= age < self.ttl:
                return None
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        return [line for line in lines if line.strip()] or None

    def remember(self, key: str, pinned: Sequence[str]) -> None:
        """Keep ``pinned`` as ``key``'s resolution from now on (written whole, then renamed,
        so a reader sees it all or not at all); expired entries are dropped."""
        if self.ttl <= 0:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        now = self.clock()
        for old in self.root.glob("*.txt"):
            with contextlib.suppress(OSError):
                if now - old.stat().st_mtime >= self.ttl:
                    old.unlink()
        partial = self.root / f".{key}-{os.getpid()}-{time.monotonic_ns()}"
        partial.write_text("".join(f"{line}\n" for line in pinned), encoding="utf-8")
        os.utime(partial, (now, now))
        partial.replace(self.root / f"{key}.txt")
