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
- :func:`select_data` picks the shared ``_data/<sha256>`` test-data copies to delete: only with
  ``older_than``, never one a build that stays refers to (its marker's ``data``), none while a
  build that stays may still be deploying (no marker yet, younger than ``min_age``).

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
from orchestrator.adapters.databricks.values import ActiveRun
from orchestrator.errors import UsageError
from orchestrator.layout import DATA_PREFIX, build_folder, is_build_name

__all__ = [
    "MIN_AGE",
    "ActiveRun",
    "Build",
    "DataCopy",
    "DataDecision",
    "Decision",
    "Policy",
    "check_storage_root",
    "check_workspace_root",
    "format_age",
    "is_digest",
    "marker_data",
    "parse_age",
    "read_marker",
    "select_builds",
    "select_data",
    "select_orphans",
]

#: Builds younger than this are never deleted: a build still deploying has no run yet.
MIN_AGE = timedelta(hours=1)

_DIGEST = re.compile(r"[0-9a-f]{64}")
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


def is_digest(name: str) -> bool:
    """A ``_data`` copy's name: a SHA-256 in lowercase hex (anything else is never deleted)."""
    return _DIGEST.fullmatch(name) is not None


def marker_data(text: str | None) -> tuple[bool, str | None]:
    """The test-data digest a marker names: (known, digest). ``data: null`` is (True, None), a
    marker without the field (or not a marker) is (False, None): the build may use any copy."""
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return False, None
    if not isinstance(data, dict) or "data" not in data:
        return False, None
    value = data["data"]
    if value is None:
        return True, None
    if isinstance(value, str) and value.startswith(DATA_PREFIX + "/"):
        digest = value[len(DATA_PREFIX) + 1 :]
        return (True, digest) if is_digest(digest) else (False, None)
    return False, None


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
    data: str | None = None  # the test-data digest its marker names
    data_known: bool = False  # False: no marker with a `data` field, it may use any copy
    has_job: bool = False  # the build's own job exists (it is deleted with the build)

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
            data=self.data if self.data_known else other.data,
            data_known=self.data_known or other.data_known,
            has_job=self.has_job or other.has_job,
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


# -- shared test data --------------------------------------------------------------------------


@dataclass(frozen=True)
class DataCopy:
    """One ``_data/<digest>`` copy in storage."""

    digest: str
    modified: datetime | None = None  # newest modification (or last use) time under it
    pending: bool = False  # an interrupted cleanup had selected it


@dataclass(frozen=True)
class DataDecision:
    copy: DataCopy
    action: Literal["delete", "keep"]
    reason: str
    age: timedelta | None = None


def _data_hold(decisions: Iterable[Decision], *, policy: Policy, now: datetime) -> str | None:
    """Why no copy may go now: a build that stays and may still be deploying (or predates the
    marker's ``data`` field) could use any of them. None when every such build is known."""
    for d in decisions:
        b = d.build
        if d.action == "delete" or b.data_known:
            continue
        when = b.created or b.modified
        if when is None or now - when < policy.min_age:
            return (
                f"build {b.repo}/{b.build_id} may be deploying (no marker naming its data, "
                f"younger than {format_age(policy.min_age)})"
            )
    return None


def select_data(
    copies: Iterable[DataCopy],
    decisions: Iterable[Decision],
    *,
    policy: Policy,
    now: datetime,
) -> list[DataDecision]:
    """One decision per ``_data`` copy, sorted by digest.

    A copy is deleted only when no build that stays (every decision but ``delete``) refers to
    it, no such build may be deploying (:func:`_data_hold`), and it was last modified longer
    ago than ``older_than`` (at least ``min_age``); or when an interrupted cleanup had selected
    it and neither of the first two keeps it. Without ``older_than`` (``--keep-last`` alone)
    there is no age to go by, and every copy is kept.
    """
    decisions = list(decisions)
    used: dict[str, str] = {}
    for d in decisions:
        if d.action != "delete" and d.build.data is not None:
            used.setdefault(d.build.data, f"used by build {d.build.repo}/{d.build.build_id}")
    hold = _data_hold(decisions, policy=policy, now=now)
    limit = max(policy.older_than, policy.min_age) if policy.older_than is not None else None
    out: list[DataDecision] = []
    for copy in sorted(copies, key=lambda c: c.digest):
        age = now - copy.modified if copy.modified is not None else None
        keep = used.get(copy.digest) or hold
        if keep is None and not copy.pending:
            if limit is None:
                keep = "test data is collected only with --older-than"
            elif age is None:
                keep = "its age is unknown"
            elif age < limit:
                keep = f"modified {format_age(age)} ago, younger than {format_age(limit)}"
        if keep is not None:
            out.append(DataDecision(copy, "keep", keep, age))
        elif copy.pending:
            out.append(DataDecision(copy, "delete", "an interrupted cleanup had selected it", age))
        else:
            why = f"no build kept refers to it, modified {format_age(age or timedelta(0))} ago"
            out.append(DataDecision(copy, "delete", why, age))
    return out
