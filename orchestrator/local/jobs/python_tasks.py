"""``spark_python_task`` and ``python_wheel_task``, run the way notebook tasks run: in a kernel
on this machine, with the task's libraries installed first, ``dbutils`` and ``spark`` as in a
notebook, the run's timeout and cancel.

Each becomes a one-cell Python notebook written into the run's scratch folder
(:func:`python_task_source`): for a Python file, ``sys.argv`` is the file and the task's
``parameters``, the working directory the file's folder, and the file runs as ``__main__``; for
a wheel, ``sys.argv`` is the package name and the ``parameters`` (or ``--key=value`` for each
of ``named_parameters``), and the entry point named by ``entry_point`` in the package's metadata
is called (else ``<package>.<entry_point>()``, as Databricks documents). ``sys.exit(0)`` is a
success, another exit code a failure. ``runs/get-output`` shows what the task printed as
``logs``, as the Jobs API does for these types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.local.runtime.execution import NotebookSource

__all__ = ["local_file", "python_task_source"]

_HEADER = "# Databricks notebook source\n"


def local_file(path: str, *, workspace_root: Path, dbfs_root: Path) -> Path:
    """Where ``python_file`` lives here: ``dbfs:/x`` in the DBFS root, ``/Volumes/x`` in its
    ``Volumes`` folder, ``/Workspace/x`` and ``/x`` in the workspace mirror."""
    if path.startswith("dbfs:/"):
        return dbfs_root / path[len("dbfs:/") :].lstrip("/")
    if path.startswith("/Volumes/"):
        return dbfs_root / path.lstrip("/")
    if path.startswith("/Workspace/"):
        path = path[len("/Workspace") :]
    return workspace_root / path.lstrip("/")


def _exit_guard(body: str) -> str:
    return (
        "try:\n"
        + "".join(f"    {line}\n" for line in body.splitlines())
        + "except SystemExit as __exit:\n"
        + "    if __exit.code not in (None, 0):\n"
        + "        raise\n"
    )


def python_task_source(
    task: Mapping[str, Any],
    parameters: Mapping[str, str],
    *,
    scratch: Path,
    workspace_root: Path,
    dbfs_root: Path,
) -> NotebookSource:
    """The one-cell notebook that runs the task, written into ``scratch``."""
    if "spark_python_task" in task:
        spec = task["spark_python_task"]
        path = str(spec["python_file"])
        file = local_file(path, workspace_root=workspace_root, dbfs_root=dbfs_root)
        argv = [path, *[str(p) for p in spec.get("parameters") or []]]
        code = (
            "import os as __os, runpy as __runpy, sys as __sys\n"
            f"__sys.argv = {json.dumps(argv)}\n"
            f"__os.chdir({json.dumps(str(file.parent))})\n"
            f"__sys.path.insert(0, {json.dumps(str(file.parent))})\n"
            + _exit_guard(f"__runpy.run_path({json.dumps(str(file))}, run_name='__main__')")
        )
        shown = path
    else:
        spec = task["python_wheel_task"]
        package, entry = str(spec["package_name"]), str(spec["entry_point"])
        named = spec.get("named_parameters")
        args = (
            [f"--{k}={v}" for k, v in named.items()]
            if isinstance(named, dict)
            else [str(p) for p in spec.get("parameters") or []]
        )
        code = (
            "import importlib as __importlib, sys as __sys\n"
            "from importlib import metadata as __metadata\n"
            f"__sys.argv = {json.dumps([package, *args])}\n"
            f"__package, __entry = {json.dumps(package)}, {json.dumps(entry)}\n"
            "try:\n"
            "    __points = [e for e in __metadata.distribution(__package).entry_points\n"
            "                if e.name == __entry]\n"
            "except __metadata.PackageNotFoundError:\n"
            "    __points = []\n"
            "if __points:\n"
            "    __main = __points[0].load()\n"
            "else:\n"
            "    __module = __importlib.import_module(__package.replace('-', '_'))\n"
            "    __main = getattr(__module, __entry)\n" + _exit_guard("__main()")
        )
        shown = f"{package}:{entry}"
    del parameters  # the task's own parameters are its argv; job parameters are not pushed
    file_path = scratch / "task_source.py"
    file_path.write_text(_HEADER + code, encoding="utf-8")
    return NotebookSource(workspace_path=shown, file=file_path, language="PYTHON")
