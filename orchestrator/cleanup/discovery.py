"""The builds that exist: workspace build folders and storage prefixes, with their markers, and
the builds' own jobs.

:func:`discover` lists ``<build_root>/<repo>/<build_id>/`` folders and ``<repo>/<build_id>/``
storage prefixes (one repo, several, or every repo under both roots), merges the two views of a
build and reads its ``_build.json`` marker, storage first (storage is not throttled) and the
workspace copy only when that fails. A build's job (``build-<repo> <build_id>``) outlives the
folders a build removes at its end, so the Jobs UI keeps showing the build: the jobs of this
build root (their ``build_folder`` is under it) are builds too, aged by the job's creation
time when no marker is left. It also reads each repo's cleanup journal,
``<build_root>/<repo>/_orchestrator/cleanup.json``: the builds a cleanup had started deleting
when it was interrupted (their markers may already be gone).

When it cleans every repo (no ``repos``), it also lists the shared test data,
``<storage_root>/_data/<sha256>``, with each copy's modification time, and the data journal
(``<build_root>/_orchestrator/cleanup.json``). With ``repos`` the other repos' builds are not
read, so which copies they use is unknown and the test data is not looked at.

The workspace is reached through :class:`~orchestrator.ports.WorkspaceTree`, which the Databricks
adapter (:class:`~orchestrator.adapters.databricks.DatabricksWorkspace`) implements, with a rate
limit on reads (:data:`DEFAULT_READ_RATE`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial

from orchestrator.adapters.databricks import BuildJob, Entry
from orchestrator.cleanup.policy import Build, DataCopy, is_digest, marker_data, read_marker
from orchestrator.errors import OrchestratorError
from orchestrator.layout import (
    DATA_PREFIX,
    MARKER_NAME,
    ORCHESTRATOR_FOLDER,
    RESERVED,
    build_folder,
    build_prefix,
    data_journal_path,
    data_prefix,
    is_build_name,
    journal_path,
)
from orchestrator.ports import WorkspaceTree
from orchestrator.storage.base import Storage
from orchestrator.storage.folder import LocalFolderStorage

__all__ = [
    "DEFAULT_READ_BURST",
    "DEFAULT_READ_RATE",
    "Discovery",
    "Entry",
    "discover",
    "read_data_journal",
    "read_journal",
    "storage_modified",
    "write_data_journal",
    "write_journal",
]

log = logging.getLogger(__name__)

#: Workspace reads (list, export) per second during discovery: under the service's published
#: list (50/s) and export (60/s) limits, leaving room for builds running meanwhile.
DEFAULT_READ_RATE = 20.0
#: Reads sent at once before the rate applies: the first listings and journal reads of a
#: cleanup go out together instead of 50 ms apart (five is a quarter of a second's budget).
DEFAULT_READ_BURST = 5.0


# -- the journal -------------------------------------------------------------------------------


def _read_pending(tree: WorkspaceTree, path: str) -> list[str]:
    text = tree.read_text(path)
    try:
        pending = json.loads(text).get("pending", []) if text else []
    except (ValueError, AttributeError):
        log.warning("%s is not a cleanup journal; ignoring it", path)
        return []
    return [p for p in pending if isinstance(p, str)] if isinstance(pending, list) else []


def _write_pending(tree: WorkspaceTree, path: str, pending: Iterable[str], what: str) -> None:
    document = {
        "pending": sorted(set(pending)),
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": f"{what} `orchestrator cleanup` started deleting; the next cleanup finishes them",
    }
    try:
        tree.write_text(path, json.dumps(document, indent=2))
    except OrchestratorError as exc:
        log.warning("could not update the cleanup journal %s: %s", path, exc)


def read_journal(tree: WorkspaceTree, root: str, repo: str) -> frozenset[str]:
    """Build ids an interrupted cleanup of ``repo`` had started deleting (unsafe ones dropped)."""
    return frozenset(p for p in _read_pending(tree, journal_path(root, repo)) if is_build_name(p))


def write_journal(tree: WorkspaceTree, root: str, repo: str, pending: Iterable[str]) -> None:
    """Record the builds being deleted; a failure is logged (the journal only helps re-runs)."""
    _write_pending(tree, journal_path(root, repo), pending, "builds")


def read_data_journal(tree: WorkspaceTree, root: str) -> frozenset[str]:
    """Test-data digests an interrupted cleanup had started deleting (others dropped)."""
    return frozenset(p for p in _read_pending(tree, data_journal_path(root)) if is_digest(p))


def write_data_journal(tree: WorkspaceTree, root: str, pending: Iterable[str]) -> None:
    """Record the ``_data`` copies being deleted (a failure is logged, as for builds)."""
    _write_pending(tree, data_journal_path(root), pending, "test-data copies")


# -- discovery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    builds: tuple[Build, ...]
    repos: tuple[str, ...]
    journals: Mapping[str, frozenset[str]]  # repo -> build ids pending in its journal
    notes: tuple[str, ...] = ()  # names seen that are never candidates
    data: tuple[DataCopy, ...] = ()  # the shared test data (only when every repo was read)
    data_journal: frozenset[str] = frozenset()


def storage_modified(storage: Storage, prefix: str) -> datetime | None:
    """The newest modification time under a prefix, where the storage can tell."""
    custom = getattr(storage, "modified", None)
    if callable(custom):
        value = custom(prefix)
        return value if isinstance(value, datetime) else None
    if isinstance(storage, LocalFolderStorage):
        folder = storage.root / prefix
        try:
            stamps = [p.stat().st_mtime for p in [folder, *folder.rglob("*")]]
        except OSError:
            return None
        return datetime.fromtimestamp(max(stamps), UTC)
    return None


@dataclass(frozen=True)
class _Found:
    repo: str
    build_id: str
    entry: Entry | None  # the workspace folder
    in_storage: bool
    pending: bool


def _inspect(
    found: _Found, *, tree: WorkspaceTree | None, storage: Storage, root: str, want_modified: bool
) -> Build | None:
    """One build with its creation time from a marker: storage first, then the workspace
    (None, without ``tree``, when the workspace's marker is needed)."""
    repo, build_id, entry = found.repo, found.build_id, found.entry
    prefix = build_prefix(repo, build_id)
    build = Build(
        repo,
        build_id,
        in_workspace=entry is not None,
        in_storage=found.in_storage,
        modified=entry.modified if entry else None,
        pending=found.pending,
    )
    marker: datetime | str = "no marker"
    text: str | None = None
    if found.in_storage:
        text = storage.read_text(f"{prefix}/{MARKER_NAME}")
        marker = read_marker(text, repo=repo, build_id=build_id)
    if not isinstance(marker, datetime) and entry is not None:
        if tree is None:
            return None
        other = tree.read_text(f"{build_folder(root, repo, build_id)}/{MARKER_NAME}")
        in_workspace = read_marker(other, repo=repo, build_id=build_id)
        if isinstance(in_workspace, datetime) or marker == "no marker":
            marker, text = in_workspace, other
    if isinstance(marker, datetime):
        known, digest = marker_data(text)
        return replace(build, created=marker, data=digest, data_known=known)
    if want_modified and found.in_storage:
        build = build.merge(Build(repo, build_id, modified=storage_modified(storage, prefix)))
    return replace(build, problem=marker)


def discover(
    tree: WorkspaceTree,
    storage: Storage,
    *,
    root: str,
    repos: Sequence[str] = (),
    want_modified: bool = False,
    concurrency: int = 8,
    jobs: Sequence[BuildJob] | Callable[[], Sequence[BuildJob]] = (),
) -> Discovery:
    """Every build folder and prefix of ``repos`` (every repo when empty), with its marker.

    ``want_modified`` also finds the modification time of storage prefixes without a marker
    (for ``--include-unmarked``; always without ``repos``, where the test-data rule needs it).
    Names that are not safe path segments are never candidates. ``jobs`` may be a callable
    (the result of a request sent beside this one): it is called only once the listings need it.
    """
    names = list(repos)
    listed = set() if names else {e.name for e in tree.list(root) or [] if e.is_dir}
    every = jobs() if callable(jobs) else jobs
    jobs = [j for j in every if j.build_folder == _folder_of(root, j)]
    if not names:
        names = sorted(listed | set(storage.list_children("")) | {j.repo for j in jobs})
    safe = [n for n in names if is_build_name(n)]
    notes = [
        f"{n}: not a repo folder name, left alone"
        for n in names
        if not is_build_name(n) and not n.startswith("_")
    ]
    found: list[_Found] = []
    journals: dict[str, frozenset[str]] = {}
    for repo in safe:
        folders = {e.name: e for e in tree.list(f"{root}/{repo}") or [] if e.is_dir}
        prefixes = set(storage.list_children(repo))
        has_journal = ORCHESTRATOR_FOLDER in folders
        pending = read_journal(tree, root, repo) if has_journal else frozenset()
        journals[repo] = pending
        for name in sorted(set(folders) | prefixes):
            if name in RESERVED or name.startswith("_"):
                continue
            if not is_build_name(name):
                notes.append(f"{repo}/{name}: not a build folder name, left alone")
                continue
            found.append(_Found(repo, name, folders.get(name), name in prefixes, name in pending))

    # the test data needs it too: an unmarked build is deploying only while it is young
    look = partial(_inspect, storage=storage, root=root, want_modified=want_modified or not repos)

    def inspect(item: _Found) -> Build:
        build = look(item, tree=tree)
        assert build is not None  # with a tree, always a build
        return build

    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="discover") as pool:
        if storage.parallel:
            inspected: Iterable[Build] = pool.map(inspect, found)
        else:
            # a folder on this machine: its markers are read here, one after another (threads
            # would only contend for its system calls, Storage.parallel); the pool reads the
            # workspace markers of the builds it holds none for
            local = [(item, look(item, tree=None)) for item in found]
            remote = pool.map(inspect, [item for item, build in local if build is None])
            inspected = [*(build for _, build in local if build is not None), *remote]
        builds = _with_jobs(inspected, [j for j in jobs if j.repo in safe])
        data: tuple[DataCopy, ...] = ()
        data_journal: frozenset[str] = frozenset()
        if not repos:
            data, data_journal = _discover_data(tree, storage, root=root, pool=pool, notes=notes)
    return Discovery(builds, tuple(safe), journals, tuple(notes), data, data_journal)


def _folder_of(root: str, job: BuildJob) -> str | None:
    try:
        return build_folder(root, job.repo, job.build_id)
    except OrchestratorError:
        return None


def _with_jobs(builds: Iterable[Build], jobs: Sequence[BuildJob]) -> tuple[Build, ...]:
    """``builds`` with their jobs; a job whose build left no folder nor prefix is a build of
    its own, aged by the job's creation time (it holds no files, so it uses no test data)."""
    by_key = {b.key: b for b in builds}
    for job in jobs:
        key = (job.repo, job.build_id)
        known = by_key.get(key)
        if known is not None:
            created = known.created or job.created
            problem = None if created else known.problem
            by_key[key] = replace(known, has_job=True, created=created, problem=problem)
        else:
            by_key[key] = Build(
                job.repo,
                job.build_id,
                created=job.created,
                has_job=True,
                data_known=True,
                problem=None if job.created else "job without a creation time",
            )
    return tuple(sorted(by_key.values(), key=lambda b: b.key))


def _discover_data(
    tree: WorkspaceTree,
    storage: Storage,
    *,
    root: str,
    pool: ThreadPoolExecutor,
    notes: list[str],
) -> tuple[tuple[DataCopy, ...], frozenset[str]]:
    """The ``_data/<sha256>`` copies with their modification times, and the data journal."""
    names = storage.list_children(DATA_PREFIX)
    notes += [
        f"{DATA_PREFIX}/{n}: not a test-data digest, left alone"
        for n in names
        if not is_digest(n) and not n.startswith("_")
    ]
    digests = [n for n in names if is_digest(n)]
    pending = read_data_journal(tree, root)

    def copy(digest: str) -> DataCopy:
        modified = storage_modified(storage, data_prefix(digest))
        return DataCopy(digest, modified, digest in pending)

    return tuple(pool.map(copy, digests)), pending
