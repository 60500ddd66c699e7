"""What ``orchestrator cleanup`` may delete and cancel: pure decisions, no service calls.

- :func:`check_workspace_root` and :func:`check_storage_root` refuse roots too broad to clean
  (``/``, ``/Shared``, ``/Users/<x>``, ``/Repos/<x>``, a bare container, a filesystem root, the
  repo itself).
- Paths to delete are made only by :func:`orchestrator.layout.build_folder` and
  :func:`orchestrator.layout.build_prefix`: one safe ``<repo>/<build_id>`` pair exactly two
  levels below the root; names starting with ``_`` are never a repo or a build.
- :func:`read_marker` turns a ``_build.json`` into a creation time (or the reason it can't).
- :func:`select_builds` applies the retention policy to one or more repos' builds;
  :func:`select_orphans` picks the active runs to cancel.

Keeping these pure is what lets a property test throw random trees and roots at them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from orchestrator.abfss import is_abfss, split_abfss
from orchestrator.adapters.databricks.model import ActiveRun
from orchestrator.errors import UsageError
from orchestrator.layout import build_folder, is_build_name

__all__ = [
    "MIN_AGE",
    "ActiveRun",
    "Build",
    "Decision",
    "Policy",
    "check_storage_root",
    "check_workspace_root",
    "format_age",
    "parse_age",
    "read_marker",
    "select_builds",
    "select_orphans",
]

#: Builds younger than this are never deleted: a build still deploying has no run yet.
MIN_AGE = timedelta(hours=1)

_AGE = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
# top-level workspace folders and how many segments a root below them needs at least
_MIN_DEPTH = {"Shared": 2, "Users": 3, "Repos": 3, "Volumes": 4}


def parse_age(text: str, *, flag: str = "age") -> timedelta:
    """``14d``, ``36h``, ``2w``, ``1d12h``, ``90m``, ``30s`` -> timedelta; UsageError otherwise."""
    value = text.strip().lower()
    pos, seconds = 0, 0.0
    for match in _AGE.finditer(value):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise UsageError(f"{flag} {text!r}: expected a duration such as 14d, 36h, 2w or 1d12h")
    return timedelta(seconds=seconds)


def format_age(age: timedelta) -> str:
    """A short human age: ``45s``, ``12m``, ``7h05m``, ``30d04h``."""
    seconds = int(age.total_seconds())
    if seconds < 0:
        return "in the future"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{secs}s"


# -- roots and paths ---------------------------------------------------------------------------


def check_workspace_root(root: str) -> str:
    """The build root, normalized; UsageError when it is too broad to clean."""
    if not root.startswith("/") or root.startswith("//"):
        raise UsageError(f"build_root {root!r} is not an absolute workspace path")
    parts = [p for p in root.split("/") if p]
    if any(p in (".", "..") for p in parts) or "//" in root.rstrip("/"):
        raise UsageError(f"build_root {root!r} is not a normalized workspace path")
    inner = parts[1:] if parts[:1] == ["Workspace"] else parts
    needed = _MIN_DEPTH.get(inner[0], 1) if inner else 1
    if len(inner) < needed:
        raise UsageError(
            f"build_root {root!r} is too broad to clean up: use a folder that holds only builds, "
            "such as /Shared/builds"
        )
    return "/" + "/".join(parts)


def check_storage_root(location: str, *, repo_root: Path | None = None) -> str:
    """The storage root; UsageError when it is a bare container or a broad local folder."""
    if is_abfss(location):
        url = split_abfss(location)
        if url is None or not url.segments:
            raise UsageError(
                f"storage root {location!r} is a bare container: clean up needs a folder in it, "
                "such as abfss://<container>@<account>.dfs.core.windows.net/ci"
            )
        if not url.normalized:
            raise UsageError(f"storage root {location!r} is not a normalized path")
        return location.rstrip("/")
    if "://" in location:
        raise UsageError(f"storage root {location!r}: unsupported URL for clean up")
    local = Path(location).expanduser().resolve()
    try:
        home: Path | None = Path.home().resolve()
    except RuntimeError:  # no home directory
        home = None
    broad = len(local.parts) < 3 or local == home
    if repo_root is not None:
        repo = repo_root.resolve()
        broad = broad or local == repo or local in repo.parents
    if broad:
        raise UsageError(
            f"storage root {location!r} is too broad to clean up: use a folder that holds only "
            "builds, such as .orchestrator/storage"
        )
    return str(local)


# -- markers -----------------------------------------------------------------------------------


def read_marker(text: str | None, *, repo: str, build_id: str) -> datetime | str:
    """The build's creation time from its marker, or a one-line reason it has none usable."""
    if text is None:
        return "no marker"
    try:
        data = json.loads(text)
    except ValueError:
        return "unreadable marker"
    if not isinstance(data, dict) or not isinstance(data.get("created"), str):
        return "marker without a creation time"
    for key, expected in (("build_id", build_id), ("repo", repo)):
        if key in data and data[key] != expected:
            return f"marker names {key} {data[key]!r}, not {expected!r}"
    try:
        created = datetime.fromisoformat(data["created"])
    except ValueError:
        return f"marker creation time {data['created']!r} is not ISO-8601"
    return created if created.tzinfo else created.replace(tzinfo=UTC)


# -- builds and the retention policy -----------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """One build as found in the workspace, in storage or both."""

    repo: str
    build_id: str
    created: datetime | None = None  # from a valid marker
    modified: datetime | None = None  # newest modification time seen (for --include-unmarked)
    in_workspace: bool = False
    in_storage: bool = False
    problem: str | None = None  # why there is no usable marker
    pending: bool = False  # an interrupted cleanup had selected it

    @property
    def key(self) -> tuple[str, str]:
        return (self.repo, self.build_id)

    def merge(self, other: Build) -> Build:
        """The same build seen elsewhere: the first valid marker and the newest time win."""
        times = [t for t in (self.modified, other.modified) if t is not None]
        return replace(
            self,
            created=self.created or other.created,
            modified=max(times) if times else None,
            in_workspace=self.in_workspace or other.in_workspace,
            in_storage=self.in_storage or other.in_storage,
            problem=None if (self.created or other.created) else (self.problem or other.problem),
            pending=self.pending or other.pending,
        )


@dataclass(frozen=True)
class Policy:
    """Delete a build only when no rule keeps it: ``keep_last`` keeps each repo's N newest,
    ``older_than`` keeps anything younger; builds younger than ``min_age`` are always kept."""

    older_than: timedelta | None = None
    keep_last: int | None = None
    include_unmarked: bool = False
    orphan_after: timedelta | None = timedelta(hours=6)  # None: no orphan sweep
    min_age: timedelta = MIN_AGE

    def __post_init__(self) -> None:
        if self.older_than is None and self.keep_last is None:
            raise UsageError("cleanup needs --older-than and/or --keep-last")
        if self.keep_last is not None and self.keep_last < 0:
            raise UsageError("--keep-last must not be negative")


Action = Literal["delete", "keep", "skip"]


@dataclass(frozen=True)
class Decision:
    build: Build
    action: Action
    reason: str
    age: timedelta | None = None


def select_builds(
    builds: Iterable[Build],
    *,
    policy: Policy,
    now: datetime,
    protected: Mapping[tuple[str, str], str] | None = None,
) -> list[Decision]:
    """One decision per build, sorted by repo and then newest first.

    ``protected`` maps builds that must stay (an active run) to the reason. Builds without a
    marker are skipped unless ``include_unmarked`` (then their modification time is their age);
    a build an interrupted cleanup had selected (``pending``) is finished whatever its marker.
    """
    protected = protected or {}
    by_repo: dict[str, list[Build]] = {}
    for b in builds:
        by_repo.setdefault(b.repo, []).append(b)
    out: list[Decision] = []
    for repo in sorted(by_repo):
        ranked: list[tuple[datetime, Build]] = []
        for b in by_repo[repo]:
            when = b.created or (b.modified if policy.include_unmarked else None)
            age = now - when if when else None
            if b.pending and b.key in protected:
                out.append(Decision(b, "keep", protected[b.key], age))
            elif b.pending:
                out.append(Decision(b, "delete", "an interrupted cleanup had selected it", age))
            elif when is None:
                why = b.problem or "no marker"
                hint = "" if policy.include_unmarked else " (--include-unmarked to include)"
                if policy.include_unmarked:
                    why += " and no modification time"
                out.append(Decision(b, "skip", why + hint))
            else:
                ranked.append((when, b))
        ranked.sort(key=lambda item: (item[0], item[1].build_id), reverse=True)
        for index, (when, b) in enumerate(ranked):
            age = now - when
            source = "created" if b.created else "modified"
            keep: list[str] = []
            if b.key in protected:
                keep.append(protected[b.key])
            if age < policy.min_age:
                keep.append(f"younger than {format_age(policy.min_age)} (may be in progress)")
            if policy.keep_last is not None and index < policy.keep_last:
                keep.append(f"one of the {policy.keep_last} newest")
            if policy.older_than is not None and age < policy.older_than:
                keep.append(f"younger than {format_age(policy.older_than)}")
            if keep:
                out.append(Decision(b, "keep", "; ".join(keep), age))
                continue
            why = f"{source} {format_age(age)} ago"
            if policy.keep_last is not None:
                why += f", not one of the {policy.keep_last} newest"
            out.append(Decision(b, "delete", why, age))
    order = {"delete": 0, "keep": 1, "skip": 2}
    out.sort(key=lambda d: (d.build.repo, order[d.action], d.build.build_id))
    return out


# -- orphaned runs -----------------------------------------------------------------------------


def select_orphans(
    runs: Iterable[ActiveRun],
    *,
    root: str,
    existing: Set[tuple[str, str]],
    policy: Policy,
    now: datetime,
) -> list[tuple[ActiveRun, str]]:
    """Active runs to cancel, with the reason: running longer than ``orphan_after``, or their
    build's folder (in this build root) no longer exists. None when the sweep is off."""
    if policy.orphan_after is None:
        return []
    out: list[tuple[ActiveRun, str]] = []
    for run in runs:
        if run.started is not None and now - run.started >= policy.orphan_after:
            out.append(
                (
                    run,
                    f"active for {format_age(now - run.started)} "
                    f"(over {format_age(policy.orphan_after)})",
                )
            )
            continue
        if run.build_id is None or not (is_build_name(run.build_id) and is_build_name(run.repo)):
            continue
        # a run whose folder is in another build root (another target) is not ours to judge
        ours = run.build_folder in (None, "") or run.build_folder == build_folder(
            root, run.repo, run.build_id
        )
        if ours and (run.repo, run.build_id) not in existing:
            out.append((run, f"its build {run.build_id} was already cleaned"))
    return out
