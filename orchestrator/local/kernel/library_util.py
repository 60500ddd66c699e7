"""``dbutils.library`` and ``dbutils.jobs`` of the in-kernel shim.

This module owns :func:`_prepare_sys_path` (the notebook folder, the ``%pip`` target folder
and a Git folder's root, in front of ``sys.path``), run by ``install`` and again by
``dbutils.library.restartPython()``, which does not restart the process but refreshes the
import system so packages installed with ``%pip`` become importable. It also owns
``dbutils.jobs.taskValues``: values set go to ``$ORCH_CONTROL_DIR/task_values.json``, values
of upstream tasks come from ``ORCH_TASK_VALUES``.

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .common import (
    DbutilsError,
    _Config,
    _print_help,
    write_json_atomic,
)

__all__ = ["JobsUtil", "LibraryUtil", "TaskValuesUtil"]


def _prepare_sys_path(config: _Config) -> None:
    """Put the notebook folder, then the %pip target and, in a Git folder, the repository's
    root (as Databricks Runtime 11.3+ does) in front of ``sys.path``."""
    import importlib

    if config.pip_target:
        Path(config.pip_target).mkdir(parents=True, exist_ok=True)
    entries = list(dict.fromkeys(e for e in (config.cwd, config.pip_target, config.repo_root) if e))
    sys.path[:] = entries + [p for p in sys.path if p not in entries]
    if config.pip_target and any(p.suffix == ".pth" for p in Path(config.pip_target).iterdir()):
        import site

        site.addsitedir(config.pip_target)  # .pth files of installed packages
    importlib.invalidate_caches()


# --------------------------------------------------------------------------- library, jobs


class LibraryUtil:
    """``dbutils.library``: only ``restartPython``, as the local equivalent."""

    def __init__(self, config: _Config) -> None:
        self._config = config

    def restartPython(self) -> None:
        """Makes packages installed with %pip importable.

        The local workspace does not restart the Python process: it puts the notebook's
        package folder first on ``sys.path`` and refreshes the import caches. Modules
        already imported keep their old version.
        """
        _prepare_sys_path(self._config)

    def help(self, method: str | None = None) -> None:
        """Prints the library utility's methods."""
        _print_help(self, "dbutils.library", method)

    def __repr__(self) -> str:
        return "<dbutils.library (local)>"


class TaskValuesUtil:
    """``dbutils.jobs.taskValues``: values set are written to ``task_values.json``.

    ``get`` reads values of upstream tasks from ``ORCH_TASK_VALUES`` when the runner provides
    them, else returns ``default`` (or ``debugValue``).
    """

    def __init__(self, config: _Config) -> None:
        self._config = config
        self._values: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        """Sets a task value on the current task run (JSON-serializable)."""
        json.dumps(value)  # refuse what Databricks refuses, now rather than later
        self._values[str(key)] = value
        if self._config.control_dir:
            write_json_atomic(Path(self._config.control_dir) / "task_values.json", self._values)

    def get(
        self,
        taskKey: str,
        key: str,
        default: Any = None,
        debugValue: Any = None,
    ) -> Any:
        """Returns a value an upstream task set, else ``default``."""
        task = self._config.task_values.get(taskKey, {})
        if key in task:
            return task[key]
        if default is not None:
            return default
        if debugValue is not None:
            return debugValue
        raise DbutilsError(f"No task value {key!r} for task {taskKey!r} and no default")

    def help(self, method: str | None = None) -> None:
        """Prints the task values utility's methods."""
        _print_help(self, "dbutils.jobs.taskValues", method)


class JobsUtil:
    """``dbutils.jobs``."""

    def __init__(self, config: _Config) -> None:
        self.taskValues = TaskValuesUtil(config)

    def help(self, method: str | None = None) -> None:
        """Prints the jobs utility's members."""
        print("dbutils.jobs.taskValues: set(key, value), get(taskKey, key, default, debugValue)")
