"""What the in-kernel ``dbutils`` modules share: errors, the run's configuration, helpers.

This module owns the ``dbutils`` exception classes (:class:`DbutilsError` and its subclasses,
:class:`NotebookExit`), :class:`_Config` (the ``ORCH_*`` environment variables the executor
sets, read once by :func:`~orchestrator.local.kernel.dbutils.install`), the
``/Workspace`` and ``/dbfs`` prefixes, and small helpers several utilities use (``help()``
output, atomic JSON control files, marking the functions this shim wrapped).

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DbutilsError",
    "InputWidgetNotDefined",
    "NotebookExit",
    "SecretNotFound",
    "SparkNotAvailable",
    "WidgetError",
    "WorkflowException",
]

_WORKSPACE = "/Workspace"
_DBFS = "/dbfs"
_VOLUMES = "/Volumes"  # Unity Catalog volumes: <dbfs root>/Volumes/... here
#: Attribute set on every function this shim wrapped, so that wrapping is done only once.
_WRAPPED_MARK = "__orch_wrapped__"


# --------------------------------------------------------------------------- errors


class DbutilsError(Exception):
    """Base class of the errors this local ``dbutils`` raises."""


class InputWidgetNotDefined(DbutilsError):
    """``dbutils.widgets.get`` of a name that is neither a widget nor a run parameter."""

    def __init__(self, name: str) -> None:
        # The Java class name is part of the message because notebooks test for it:
        # ``if "InputWidgetNotDefined" in str(e)``.
        super().__init__(
            f"com.databricks.dbutils_v1.InputWidgetNotDefined: No input widget named {name} "
            "is defined"
        )
        self.name = name


class WidgetError(DbutilsError, ValueError):
    """A widget definition Databricks would refuse (default not among the choices...)."""


class SecretNotFound(DbutilsError):
    """A secret scope or key that ``ORCH_SECRETS`` does not hold."""


class SparkNotAvailable(DbutilsError, RuntimeError):
    """``spark`` was used but its engine or client is not installed or not running."""


class WorkflowException(DbutilsError):
    """A child notebook started by ``dbutils.notebook.run`` did not succeed.

    Its message is Databricks' (``com.databricks.WorkflowException: ...``); what went wrong
    in the child is in the child's own run (``run_id``, ``run_page_url``), not here.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        status: str,
        run_id: int | None = None,
        run_page_url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.status = status
        self.run_id = run_id
        self.run_page_url = run_page_url


class NotebookExit(Exception):
    """Raised by ``dbutils.notebook.exit`` to stop the notebook after ``exit.json`` is written."""

    def __init__(self, value: str) -> None:
        super().__init__(f"Notebook exited: {value}")
        self.value = value

    def _render_traceback_(self) -> list[str]:
        """No traceback: IPython uses this instead of formatting one with pygments for its
        exception history (0.1-0.2 s for the first exception in a kernel, at every exit)."""
        return []


# --------------------------------------------------------------------------- configuration


class _Config:
    """The run's settings, read once from the ``ORCH_*`` environment variables.

    Secret values are held here and nowhere else; ``repr`` does not show them.
    """

    def __init__(self, environ: Mapping[str, str], cwd: str) -> None:
        self.notebook_path = environ.get("ORCH_NOTEBOOK_PATH", "")
        self.workspace_root = _abspath_or_empty(environ.get("ORCH_WORKSPACE_ROOT", ""))
        self.dbfs_root = _abspath_or_empty(environ.get("ORCH_DBFS_ROOT", ""))
        self.control_dir = environ.get("ORCH_CONTROL_DIR", "")
        self.pip_target = _abspath_or_empty(environ.get("ORCH_PIP_TARGET", ""))
        #: the root of the Git folder the notebook is in ("" outside one)
        self.repo_root = _abspath_or_empty(environ.get("ORCH_REPO_ROOT", ""))
        self.cwd = cwd
        self.run_id = environ.get("ORCH_RUN_ID", "")
        self.job_id = environ.get("ORCH_JOB_ID", "")
        self.params = _string_map(environ.get("ORCH_PARAMS", ""), "ORCH_PARAMS")
        self.task_values = _nested_string_map(
            environ.get("ORCH_TASK_VALUES", ""), "ORCH_TASK_VALUES", as_json=True
        )
        self.secrets = _nested_string_map(environ.get("ORCH_SECRETS", ""), "ORCH_SECRETS")

    def __repr__(self) -> str:
        return f"<local dbutils config for {self.notebook_path!r}>"


def _abspath_or_empty(path: str) -> str:
    return os.path.abspath(path) if path else ""  # noqa: PTH100 - string in, string out


def _load_json_object(text: str, variable: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DbutilsError(f"{variable} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DbutilsError(f"{variable} must be a JSON object")
    return value


def _string_map(text: str, variable: str) -> dict[str, str]:
    return {str(k): _as_str(v) for k, v in _load_json_object(text, variable).items()}


def _nested_string_map(text: str, variable: str, *, as_json: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for outer, inner in _load_json_object(text, variable).items():
        if not isinstance(inner, dict):
            raise DbutilsError(f"{variable}[{outer!r}] must be a JSON object")
        result[str(outer)] = {str(k): (v if as_json else _as_str(v)) for k, v in inner.items()}
    return result


def _as_str(value: Any) -> str:
    """Databricks passes parameters as strings; JSON scalars are turned into their text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


# --------------------------------------------------------------------------- helpers


def _has_prefix(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _mark(wrapper: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, _WRAPPED_MARK, True)
    return wrapper


def _print_help(util: object, title: str, method: str | None) -> None:
    names = [n for n in dir(util) if not n.startswith("_") and callable(getattr(util, n))]
    if method is not None:
        if method not in names:
            print(f"{title} has no method {method!r}")
            return
        names = [method]
    print(f"{title} (local workspace):")
    for name in names:
        doc = (getattr(util, name).__doc__ or "").strip().splitlines()
        print(f"  {name}: {doc[0] if doc else ''}")


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    """``payload`` as JSON in ``path``, through a temporary file renamed into place, so the
    executor never reads half a control file. The kernel side's one atomic write: this
    package imports nothing from the orchestrator, whose ``orchestrator.files`` is the host's.
    """
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
