"""A job's (or a one-time run's) ``git_source`` and its tasks' ``source``, checked at create,
reset, update and submit, so that what cannot run is refused there and not at run time.

As the Jobs API documents it (databricks-sdk's ``GitSource``, ``NotebookTask``): ``git_url``
and ``git_provider`` (case-insensitive) are required, and exactly one of ``git_branch``,
``git_tag`` and ``git_commit``; ``sparse_checkout`` holds cone patterns. A notebook task's
``source`` is ``WORKSPACE`` or ``GIT``; without one it is ``GIT`` when the job has a
``git_source``. A notebook from Git is named by a path relative to the repository's root.
Whether the URL can be cloned is known only when a run starts: an unknown one fails the run's
Git tasks then, naming it (:mod:`.git_snapshots`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.local.state.api_error import bad_request
from orchestrator.local.state.git_commands import cone_patterns
from orchestrator.local.state.git_store import canonical_provider

__all__ = ["REFERENCES", "check_git_source", "task_source"]

#: the fields of ``git_source`` that name what to check out; exactly one is given
REFERENCES = ("git_branch", "git_tag", "git_commit")
_SOURCES = ("WORKSPACE", "GIT")


def task_source(notebook_task: Mapping[str, Any], *, has_git_source: bool) -> str:
    """Where a notebook task's notebook comes from: ``GIT`` or ``WORKSPACE``."""
    source = notebook_task.get("source")
    if isinstance(source, str):
        return source
    return "GIT" if has_git_source else "WORKSPACE"


def check_git_source(settings: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> None:
    """400 naming the problem when ``git_source`` or a task's ``source`` cannot run."""
    git_source = settings.get("git_source")
    if git_source is not None:
        _check_object(git_source)
    for task in tasks:
        notebook = task.get("notebook_task")
        if not isinstance(notebook, dict):
            continue
        key = task.get("task_key")
        source = notebook.get("source")
        if source is not None and source not in _SOURCES:
            raise bad_request(f"Task {key}: invalid notebook_task.source {str(source)[:40]!r}")
        if task_source(notebook, has_git_source=git_source is not None) != "GIT":
            continue
        if git_source is None:
            raise bad_request(
                f"Task {key}: notebook_task.source is GIT but the job has no git_source"
            )
        path = notebook.get("notebook_path")
        if isinstance(path, str) and path.startswith("/"):
            raise bad_request(
                f"Task {key}: the notebook_path of a notebook in a Git repository must be "
                f"relative to the repository's root, not {path[:200]}"
            )


def _check_object(git_source: object) -> None:
    if not isinstance(git_source, dict):
        raise bad_request("Invalid git_source: expected an object")
    url = git_source.get("git_url")
    if not isinstance(url, str) or not url.strip():
        raise bad_request("git_source.git_url is required")
    provider = git_source.get("git_provider")
    if provider is None:
        raise bad_request("git_source.git_provider is required")
    if canonical_provider(provider) is None:
        raise bad_request(f"Invalid git_source.git_provider: {str(provider)[:100]}")
    given = [name for name in REFERENCES if git_source.get(name) is not None]
    if len(given) != 1:
        raise bad_request(
            "git_source needs exactly one of git_branch, git_tag and git_commit"
            + (f", not {' and '.join(given)}" if given else "")
        )
    value = git_source[given[0]]
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"git_source.{given[0]} must be a non-empty string")
    try:
        cone_patterns(git_source.get("sparse_checkout"))
    except ValueError as exc:
        raise bad_request(f"git_source: {exc}") from None
