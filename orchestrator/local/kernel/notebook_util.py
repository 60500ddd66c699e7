"""``dbutils.notebook`` of the in-kernel shim: exit, run and the notebook's context.

This module owns :class:`NotebookUtil`. ``exit`` writes ``$ORCH_CONTROL_DIR/exit.json`` and
raises :class:`~.common.NotebookExit`, which the IPython handler set up by ``install``
swallows; the executor sees the file and ends the notebook as SUCCESS. ``run`` writes a
request into ``$ORCH_CONTROL_DIR`` that the run executing this notebook serves
(:mod:`orchestrator.local.runtime.children`) and waits for its result file. As on
Databricks, the child is a run of its own: the calling cell shows its link ("Notebook job
#<run id>") and a child that did not succeed raises :class:`~.common.WorkflowException` with
Databricks' message, which names neither the child's error nor its traceback (they are in the
child's run). ``getContext`` and ``entry_point`` answer the context calls notebooks make
(path, run ids, tags).

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .child_view import show_child_run_link
from .common import (
    _WORKSPACE,
    DbutilsError,
    NotebookExit,
    WorkflowException,
    _Config,
    _has_prefix,
    _print_help,
    write_json_atomic,
)
from .spark_state import active

__all__ = ["CHILD_FAILED", "CHILD_TIMED_OUT", "NotebookContext", "NotebookUtil", "child_failure"]

_CHILD_POLL_SECONDS = 0.02
#: what a failed child raises in its caller, word for word as on Databricks
CHILD_FAILED = (
    "com.databricks.WorkflowException: com.databricks.NotebookExecutionException: "
    "FAILED: Workload failed, see run output for details"
)
#: ... and a child that ran out of its ``timeout_seconds``
CHILD_TIMED_OUT = (
    "com.databricks.WorkflowException: com.databricks.NotebookExecutionException: "
    "TIMEDOUT: Notebook run timed out"
)


class _Option:
    """The little of Scala's ``Option`` that notebooks call on context values."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def get(self) -> Any:
        if self._value is None:
            raise DbutilsError("None.get")
        return self._value

    def isDefined(self) -> bool:
        return self._value is not None

    def isEmpty(self) -> bool:
        return self._value is None

    def getOrElse(self, default: Any) -> Any:
        return default if self._value is None else self._value

    def __repr__(self) -> str:
        return "None" if self._value is None else f"Some({self._value})"


class _Tags:
    """Context tags, with Scala ``Map``'s ``apply``/``get``/``contains``."""

    def __init__(self, tags: Mapping[str, str]) -> None:
        self._tags = dict(tags)

    def apply(self, key: str) -> str:
        if key not in self._tags:
            raise KeyError(f"key not found: {key}")
        return self._tags[key]

    def get(self, key: str) -> _Option:
        return _Option(self._tags.get(key))

    def contains(self, key: str) -> bool:
        return key in self._tags

    def __repr__(self) -> str:
        return f"Map({', '.join(f'{k} -> {v}' for k, v in self._tags.items())})"


class NotebookContext:
    """What ``getContext()`` returns: the notebook's path, run ids and tags."""

    def __init__(self, config: _Config) -> None:
        self._config = config

    def notebookPath(self) -> _Option:
        return _Option(self._config.notebook_path or None)

    def currentRunId(self) -> _Option:
        return _Option(self._config.run_id or None)

    def userName(self) -> _Option:
        return _Option(self._user())

    def tags(self) -> _Tags:
        return _Tags(self._tag_dict())

    def toJson(self) -> str:
        return json.dumps(
            {
                "extraContext": {"notebook_path": self._config.notebook_path},
                "tags": self._tag_dict(),
                "currentRunId": self._config.run_id or None,
            }
        )

    safeToJson = toJson

    def _user(self) -> str | None:
        parts = self._config.notebook_path.split("/")
        return parts[2] if len(parts) > 2 and parts[1] == "Users" and parts[2] else None

    def _tag_dict(self) -> dict[str, str]:
        tags = {"notebookPath": self._config.notebook_path, "clusterId": "local"}
        user = self._user()
        if user:
            tags["user"] = user
        if self._config.job_id:
            tags["jobId"] = self._config.job_id
        if self._config.run_id:
            tags["runId"] = self._config.run_id
        return tags

    def __repr__(self) -> str:
        return f"<notebook context {self._config.notebook_path!r}>"


class _EntryPointNotebook:
    def __init__(self, context: NotebookContext) -> None:
        self._context = context

    def getContext(self) -> NotebookContext:
        return self._context


class _EntryPointDbutils:
    def __init__(self, context: NotebookContext) -> None:
        self._notebook = _EntryPointNotebook(context)

    def notebook(self) -> _EntryPointNotebook:
        return self._notebook


class _EntryPoint:
    """``dbutils.notebook.entry_point``: the calls notebooks make through py4j."""

    def __init__(self, context: NotebookContext, params: Mapping[str, str]) -> None:
        self._dbutils = _EntryPointDbutils(context)
        self._params = dict(params)

    def getDbutils(self) -> _EntryPointDbutils:
        return self._dbutils

    def getCurrentBindings(self) -> dict[str, str]:
        return dict(self._params)


class NotebookUtil:
    """``dbutils.notebook``: exit with a value, run another notebook, the context."""

    def __init__(self, config: _Config) -> None:
        self._config = config
        self._context = NotebookContext(config)
        self.entry_point = _EntryPoint(self._context, config.params)

    def exit(self, value: Any) -> None:
        """Ends the notebook with ``value`` (as a string) as its exit value."""
        text = str(value)
        if not self._config.control_dir:
            raise DbutilsError("ORCH_CONTROL_DIR is not set: cannot record the exit value")
        write_json_atomic(Path(self._config.control_dir) / "exit.json", {"value": text})
        raise NotebookExit(text)

    def run(
        self, path: str, timeout_seconds: int = 0, arguments: Mapping[str, Any] | None = None
    ) -> str:
        """Runs a notebook and returns its exit value; raises WorkflowException if it fails."""
        import secrets
        import time

        target = _resolve_notebook_path(str(path), self._config.notebook_path)
        args = {str(k): v if isinstance(v, str) else str(v) for k, v in (arguments or {}).items()}
        if not self._config.control_dir:
            raise DbutilsError("ORCH_CONTROL_DIR is not set: cannot run a child notebook")
        control = Path(self._config.control_dir)
        spark = active()
        if spark is not None:  # the child's session sees what this one made so far
            spark.flush()
        stem = f"child-{os.getpid()}-{secrets.token_hex(6)}"
        result_file = control / f"{stem}.result.json"
        started_file = control / f"{stem}.started.json"
        request = {"path": target, "timeout": int(timeout_seconds or 0), "args": args}
        # The run executing this notebook claims the request and writes the result.
        write_json_atomic(control / f"{stem}.request.json", request)
        shown = False
        try:
            while not result_file.exists():
                if not shown and started_file.exists():
                    shown = _show_link(_read_json(started_file))
                time.sleep(_CHILD_POLL_SECONDS)
        except BaseException:  # interrupted: stop the child run with us
            write_json_atomic(control / f"{stem}.cancel.json", {})
            raise
        result = _read_json(result_file)
        result_file.unlink(missing_ok=True)
        started_file.unlink(missing_ok=True)
        if not shown:
            _show_link(result)
        status = str(result.get("status") or "FAILED")
        if status == "SUCCESS":
            value = result.get("exit_value")
            return "" if value is None else str(value)
        raise WorkflowException(
            child_failure(status, result),
            path=target,
            status=status,
            run_id=_run_id(result),
            run_page_url=str(result.get("run_page_url") or "") or None,
        )

    def getContext(self) -> NotebookContext:
        """The notebook's context (path, run id, tags)."""
        return self._context

    def help(self, method: str | None = None) -> None:
        """Prints the notebook utility's methods."""
        _print_help(self, "dbutils.notebook", method)

    def __repr__(self) -> str:
        return "<dbutils.notebook (local)>"


def _resolve_notebook_path(path: str, current: str) -> str:
    """Make a ``dbutils.notebook.run`` path absolute, without the ``/Workspace`` prefix."""
    if _has_prefix(path, _WORKSPACE):
        path = path[len(_WORKSPACE) :] or "/"
    if not path.startswith("/"):
        base = current[len(_WORKSPACE) :] if _has_prefix(current, _WORKSPACE) else current
        path = posixpath.join(posixpath.dirname(base) or "/", path)
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/")


def child_failure(status: str, result: Mapping[str, Any]) -> str:
    """The message of the WorkflowException a child that did not succeed raises.

    A child run that failed or timed out gives Databricks' own message. A request that
    started no run (its notebook does not exist) has no run to point at: its reason (the
    answer's ``error``) is given after the exception's class name.
    """
    if result.get("error"):
        return f"com.databricks.WorkflowException: {result['error']}"
    if status == "TIMEDOUT":
        return CHILD_TIMED_OUT
    if status == "CANCELED":
        return (
            "com.databricks.WorkflowException: com.databricks.NotebookExecutionException: "
            "CANCELED: Run cancelled"
        )
    return CHILD_FAILED


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _run_id(result: Mapping[str, Any]) -> int | None:
    value = result.get("run_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _show_link(answer: Mapping[str, Any]) -> bool:
    """Show the child run's link once its run exists; whether it was shown."""
    run_id = _run_id(answer)
    url = answer.get("run_page_url")
    if run_id is None or not isinstance(url, str):
        return False
    show_child_run_link(run_id, url)
    return True
