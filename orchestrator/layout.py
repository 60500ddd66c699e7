"""Every name and path that ``orchestrator build`` creates and ``orchestrator cleanup`` deletes.

Cleanup removes what builds made, so both must agree on the layout; this module is the one place
it is written down, and build, cleanup and the job parameters all use it:

* a build has a job of its own, ``build-<repo> <build_id>`` (:func:`build_job_name`), which
  runs once; the repos of earlier versions had one job per repo, ``build-<repo>``
  (:func:`job_name`), whose runs cleanup still finds;
* a build's notebooks are in ``<build_root>/<repo>/<build_id>`` (:func:`build_folder`), its
  files in ``<storage_root>/<repo>/<build_id>`` (:func:`build_prefix`), each with a
  ``_build.json`` marker (:data:`MARKER_NAME`);
* the orchestrator's own files per repo are in ``<build_root>/<repo>/_orchestrator``: the
  cleanup journal;
* test data is stored once per content digest under ``<storage_root>/_data/<sha256>``;
* the embedded local workspace keeps its state in ``<repo>/.orchestrator/local-workspace``;
* every name starting with ``_`` belongs to the orchestrator and is never a repo or a build, and
  repo names and build ids are safe single path segments (:func:`validate_segment`).

Pure functions of strings: no I/O, nothing imported beyond the standard library.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

from orchestrator.errors import UsageError

__all__ = [
    "DATA_PREFIX",
    "HOME",
    "JOURNAL_NAME",
    "LOCAL_SERVE_PORT",
    "LOCAL_STATE_DIR",
    "MARKER_NAME",
    "ORCHESTRATOR_FOLDER",
    "RESERVED",
    "build_folder",
    "build_prefix",
    "data_journal_path",
    "data_prefix",
    "entry_notebook_path",
    "is_build_name",
    "job_name",
    "journal_path",
    "parse_build_job_name",
    "repo_folder",
    "resolve_home",
    "validate_segment",
]

#: The marker each build writes into its build folder and its storage prefix.
MARKER_NAME = "_build.json"
#: The orchestrator's own folder beside a repo's build folders.
ORCHESTRATOR_FOLDER = "_orchestrator"
#: The storage prefix of the shared, content-addressed test data.
DATA_PREFIX = "_data"
#: The cleanup journal's name in a repo's orchestrator folder.
JOURNAL_NAME = "cleanup.json"
#: Where a build's embedded local workspace keeps its state, relative to the repo root, and
#: where ``orchestrator local serve`` looks by default (with its default port), so a build's runs
#: can be browsed after it ended.
LOCAL_STATE_DIR = ".orchestrator/local-workspace"
LOCAL_SERVE_PORT = 8765
#: A build root starting with ``~`` is under the home folder of the identity the build runs as,
#: ``/Users/<user name or application id>`` (:func:`resolve_home`): Databricks gives only that
#: identity and the workspace admins access there, so nobody else can change what a build runs.
HOME = "~"
#: Names the orchestrator owns. Every name starting with ``_`` is reserved the same way, at the
#: repo and at the build level.
RESERVED = frozenset({ORCHESTRATOR_FOLDER, DATA_PREFIX})

_MAX_SEGMENT = 100
_SEGMENT_ALLOWED = re.compile(r"[A-Za-z0-9._-]+")


def job_name(repo: str) -> str:
    """The name of a repo's job in earlier versions (one job per repo, one run per build)."""
    return f"build-{repo}"


def build_job_name(repo: str, build_id: str) -> str:
    """The name of a build's job (and so of its run): ``build-<repo> <build_id>``. Neither part can
    hold a space (:func:`validate_segment`), so the name reads back with
    :func:`parse_build_job_name`."""
    return f"build-{repo} {build_id}"


def parse_build_job_name(name: str) -> tuple[str, str] | None:
    """``(repo, build_id)`` of a build job's (or its run's) name, or None for any other."""
    head, _, build_id = name.partition(" ")
    repo = head[len("build-") :] if head.startswith("build-") else ""
    if is_build_name(repo) and is_build_name(build_id):
        return repo, build_id
    return None


def resolve_home(path: str, user: str) -> str:
    """``path`` with a leading ``~`` replaced by ``/Users/<user>``; other paths as they are."""
    if path == HOME or path.startswith(HOME + "/"):
        return f"/Users/{user}{path[len(HOME) :]}"
    return path


def repo_folder(build_root: str, repo: str) -> str:
    """``<build_root>/<repo>``: the repo's build folders and its orchestrator folder."""
    return f"{build_root.rstrip('/')}/{repo}"


def build_folder(build_root: str, repo: str, build_id: str) -> str:
    """``<build_root>/<repo>/<build_id>``, checked: one safe build two levels below the root.

    This is how a build names its folder and the only way cleanup makes a workspace path to
    delete; anything else is a UsageError.
    """
    if not (is_build_name(repo) and is_build_name(build_id)):
        raise UsageError(f"refusing {repo!r}/{build_id!r}: not a build folder name")
    path = f"{repo_folder(build_root, repo)}/{build_id}"
    pure = PurePosixPath(path)
    root = build_root.rstrip("/") or "/"
    absolute = root.startswith("/") or root == HOME or root.startswith(HOME + "/")
    if str(pure) != path or pure.parent.parent != PurePosixPath(root) or not absolute:
        raise UsageError(f"refusing {path}: not two levels below {build_root}")
    return path


def build_prefix(repo: str, build_id: str) -> str:
    """``<repo>/<build_id>`` below the storage root, checked like :func:`build_folder`."""
    if not (is_build_name(repo) and is_build_name(build_id)):
        raise UsageError(f"refusing {repo!r}/{build_id!r}: not a build prefix name")
    return f"{repo}/{build_id}"


def entry_notebook_path(build_root: str, repo: str) -> str:
    """Where earlier versions kept the repo's entry notebook; a template that still names it
    (``${entry_notebook}``) runs its notebooks directly (:mod:`orchestrator.job.build_job`)."""
    return f"{repo_folder(build_root, repo)}/{ORCHESTRATOR_FOLDER}/entry"


def journal_path(build_root: str, repo: str) -> str:
    """The repo's cleanup journal (the builds a cleanup had started deleting)."""
    return f"{repo_folder(build_root, repo)}/{ORCHESTRATOR_FOLDER}/{JOURNAL_NAME}"


def data_journal_path(build_root: str) -> str:
    """The cleanup journal of the shared test data (the ``_data`` copies a cleanup started
    deleting): ``<build_root>/_orchestrator/cleanup.json``, beside the repos' folders."""
    return f"{build_root.rstrip('/')}/{ORCHESTRATOR_FOLDER}/{JOURNAL_NAME}"


def data_prefix(digest: str) -> str:
    """The shared, immutable storage prefix of a test-data tree with this digest."""
    return f"{DATA_PREFIX}/{digest}"


def is_build_name(name: str) -> bool:
    """True for a name that can be a repo or build folder: a safe path segment, not reserved."""
    return name not in RESERVED and _segment_problem(name) is None


def validate_segment(value: str, *, what: str) -> str:
    """Return ``value`` if it is safe as one path segment, else raise a one-line UsageError.

    Safe means: not empty, at most 100 characters, only ASCII letters, digits, ``.``, ``_`` and
    ``-``, not starting with ``_`` (reserved), and no ``..`` anywhere (so never ``.`` or ``..``
    either). That keeps it one segment in a workspace path, a local path on any OS and an
    ``abfss://`` URL without quoting.
    """
    problem = _segment_problem(value)
    if problem is not None:
        raise UsageError(
            f"invalid {what} {_show(value)}: {problem}; use only letters, digits, '.', '_' and '-'"
        )
    return value


def _segment_problem(value: str) -> str | None:
    if not value:
        return "it is empty"
    if any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in value):
        return "it contains a control character"
    if any(c.isspace() for c in value):
        return "it contains a space"
    if "/" in value or "\\" in value:
        return "it contains a path separator"
    if ".." in value or value == ".":
        return "it contains '..' or is '.'"
    if value.startswith("_"):
        return "it starts with '_' (reserved for the orchestrator's own folders)"
    if len(value) > _MAX_SEGMENT:
        return f"it is longer than {_MAX_SEGMENT} characters"
    if not _SEGMENT_ALLOWED.fullmatch(value):
        bad = next(c for c in value if not _SEGMENT_ALLOWED.fullmatch(c))
        return f"it contains {bad!r}"
    return None


def _show(value: str) -> str:
    shown = value if len(value) <= 60 else value[:57] + "..."
    return ascii(shown)
