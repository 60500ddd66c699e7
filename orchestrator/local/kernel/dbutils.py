"""Databricks notebook globals for Python notebooks run by the local workspace.

The executor starts one ipykernel per Python notebook task and, before the first user cell,
runs ``install(get_ipython())``. That puts into the user namespace what a Databricks notebook
finds there: ``dbutils``, ``display``, ``displayHTML``, ``spark`` (and ``sc``) and
``getArgument``. Everything is configured from the ``ORCH_*`` environment variables the
executor sets (see :class:`~.common._Config`); nothing here talks to the server.

This module is the entry point: it owns :func:`install`, the :class:`DBUtils` object that
gathers the utilities, and the IPython handler of :class:`NotebookExit`. The parts live in:

* ``common``: the errors (:class:`DbutilsError`, :class:`NotebookExit`...), the
  run's configuration and helpers the other modules share.
* ``path_mapping``: ``/Workspace/...`` and ``/dbfs/...`` work with ordinary file APIs
  because :func:`install` wraps ``open`` and the path-taking ``os`` functions that
  ``os.path``, ``pathlib``, ``shutil`` and ``glob`` call.
* ``fs_util``: ``dbutils.fs``: ``dbfs:/x``, ``/x`` and ``/dbfs/x`` are
  ``$ORCH_DBFS_ROOT/x``; ``/Workspace/x`` is ``$ORCH_WORKSPACE_ROOT/x``; ``file:/x`` is the
  local file ``/x``.
* ``widgets_util``: ``dbutils.widgets``: widget definitions live in this process; run
  parameters (``ORCH_PARAMS``) win over widget defaults and are readable without a widget
  definition.
* ``notebook_util``: ``dbutils.notebook.exit`` writes ``$ORCH_CONTROL_DIR/exit.json`` and
  raises :class:`NotebookExit`, which a custom IPython handler swallows without a traceback;
  the executor sees the file and ends the notebook as SUCCESS. ``dbutils.notebook.run`` asks the
  run executing this notebook for a child run (``children.py``), shows its link ("Notebook job
  #<run id>") and waits for its result; a child that did not succeed raises Databricks'
  ``WorkflowException`` message, nothing of the child's error.
* ``secrets_util``: ``dbutils.secrets``: values from ``ORCH_SECRETS``; values read are
  redacted from ``sys.stdout``/``sys.stderr`` (values of four characters or more) and from
  their ``repr``.
* ``library_util``: ``dbutils.library`` and ``dbutils.jobs.taskValues``.
* ``display``: ``display`` and ``displayHTML``.
* ``spark_session``: ``spark``, a Spark Connect session on the engine of the task's cluster,
  created on first use, and ``sc``, which fails as on Databricks' Spark Connect compute;
  ``spark_hooks`` makes pyspark behave as in a Databricks notebook (``getActiveSession``,
  ``df.display()``, SQL through the compatibility layer ``sql_compat``); ``sql_cells`` runs
  ``%sql`` cells and SQL notebooks; ``engine_errors`` shows Spark errors without the client's
  internals, saying whether the engine or the notebook's SQL is at fault.

Limitations, by design of a local stand-in:

* The path mapping lives in this Python process only. Code that opens files from C (sqlite3,
  pyarrow, h5py...), subprocesses, and modules that kept a reference to ``open`` from before
  :func:`install` (``tarfile``) see the real file system, where ``/Workspace`` and ``/dbfs``
  do not exist. ``os.getcwd()`` reads ``/Workspace/...`` as on Databricks Runtime 14+ (and
  ``%sh pwd`` too), but the process's real working directory, which subprocesses inherit and
  ``$PWD`` shows, is the notebook's local folder.
* ``dbutils.library.restartPython()`` does not restart the process; it refreshes the import
  system so packages installed with ``%pip`` become importable.
* ``spark`` needs the ``orchestrator[spark]`` extra (Sail engine and Spark Connect client);
  paths inside SQL text are not mapped to the local DBFS.

These modules run inside user kernels: standard library only, and nothing heavier than what
ipykernel has already imported is imported at module level.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from .common import (
    _DBFS,
    _VOLUMES,
    _WORKSPACE,
    DbutilsError,
    InputWidgetNotDefined,
    NotebookExit,
    SecretNotFound,
    SparkNotAvailable,
    WidgetError,
    WorkflowException,
    _Config,
)
from .display import display, displayHTML
from .engine_errors import UnsupportedByLocalEngine, show_spark_error
from .fs_util import FileInfo, FsUtil
from .library_util import (
    JobsUtil,
    LibraryUtil,
    _prepare_sys_path,
)
from .library_util import TaskValuesUtil as TaskValuesUtil
from .notebook_util import NotebookContext as NotebookContext
from .notebook_util import NotebookUtil
from .path_mapping import _install_path_hooks, _PathMapper, real_getcwd
from .secrets_util import SecretMetadata, SecretScope, SecretsUtil
from .spark_hooks import install_hooks
from .spark_session import SparkContextProxy, SparkProxy
from .spark_state import set_widgets
from .widgets_util import WidgetsUtil

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "DbutilsError",
    "FileInfo",
    "InputWidgetNotDefined",
    "NotebookExit",
    "SecretMetadata",
    "SecretNotFound",
    "SecretScope",
    "SparkNotAvailable",
    "UnsupportedByLocalEngine",
    "WidgetError",
    "WorkflowException",
    "display",
    "displayHTML",
    "install",
]


# --------------------------------------------------------------------------- dbutils


class DBUtils:
    """The local workspace's ``dbutils``: fs, notebook, secrets, widgets, library, jobs."""

    def __init__(self, config: _Config, mapper: _PathMapper) -> None:
        self.fs = FsUtil(config, mapper)
        self.notebook = NotebookUtil(config)
        self.secrets = SecretsUtil(config.secrets)
        self.widgets = WidgetsUtil(config.params)
        self.library = LibraryUtil(config)
        self.jobs = JobsUtil(config)

    def help(self) -> None:
        """Prints the utilities this dbutils provides."""
        print(
            "dbutils (local workspace) provides:\n"
            "  fs: ls, cp, mv, rm, mkdirs, put, head\n"
            "  notebook: exit, run, getContext, entry_point\n"
            "  secrets: get, getBytes, list, listScopes\n"
            "  widgets: text, dropdown, combobox, multiselect, get, getArgument, getAll,"
            " remove, removeAll\n"
            "  library: restartPython\n"
            "  jobs: taskValues.set, taskValues.get\n"
            "Use dbutils.<utility>.help() for details."
        )

    def __repr__(self) -> str:
        return "<dbutils (local workspace)>"


# --------------------------------------------------------------------------- install


def _exit_handler(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> list[str]:
    """IPython custom exception handler: no output at all for :class:`NotebookExit` (the
    executor reports the exit itself, "Notebook exited: <value>", when it finds
    ``exit.json`` after the cell); Spark errors and refusals without the Spark client's
    frames, saying who is at fault (:func:`~.engine_errors.show_spark_error`)."""
    if isinstance(value, NotebookExit):
        return []
    return show_spark_error(shell, etype, value, tb, tb_offset)


def install(ipython: Any) -> None:
    """Set up the Databricks notebook globals in ``ipython`` (an IPython shell).

    Reads the ``ORCH_*`` environment variables, prepares ``sys.path``, installs the
    ``/Workspace``/``/dbfs`` path mapping and pushes ``dbutils``, ``display``,
    ``displayHTML``, ``spark``, ``sc`` and ``getArgument`` into the user namespace. With
    ``ipython=None`` only the process-wide parts are set up.
    """
    config = _Config(os.environ, real_getcwd())
    _prepare_sys_path(config)
    volumes = os.path.join(config.dbfs_root, "Volumes") if config.dbfs_root else ""  # noqa: PTH118
    mapper = _PathMapper(
        {_WORKSPACE: config.workspace_root, _DBFS: config.dbfs_root, _VOLUMES: volumes}
    )
    user_ns: dict[str, Any] | None = getattr(ipython, "user_ns", None)
    _install_path_hooks(mapper, user_ns)
    dbutils = DBUtils(config, mapper)
    spark = SparkProxy(config, functools.partial(_spark_path, dbutils.fs))
    names: dict[str, Any] = {
        "dbutils": dbutils,
        "display": display,
        "displayHTML": displayHTML,
        "spark": spark,
        "sc": SparkContextProxy(),
        "getArgument": dbutils.widgets.getArgument,
    }
    set_widgets(dbutils.widgets)
    if ipython is not None:
        ipython.push(names, interactive=False)
        handled: list[type[BaseException]] = [NotebookExit, UnsupportedByLocalEngine]

        def handle(types: tuple[type[BaseException], ...]) -> None:
            handled.extend(t for t in types if t not in handled)
            ipython.set_custom_exc(tuple(handled), _exit_handler)

        handle(())
        install_hooks(handle)
        ipython.events.register("pre_run_cell", spark.before_cell)
        ipython.events.register("post_run_cell", spark.after_cell)


def _spark_path(fs: FsUtil, path: str) -> str:
    """A Spark path as the engine sees it: where ``dbutils.fs`` puts the same path."""
    scheme, sep, _ = path.partition(":")
    if sep and scheme.isidentifier() and scheme not in ("dbfs", "file"):
        return path  # s3://, abfss://...: the engine's business
    return str(fs._resolve(path).local)
