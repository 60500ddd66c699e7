"""How the kernel of a notebook run is launched: command line, environment, bootstrap code.

This module owns the contract between the executor and the in-kernel shims: the ``ORCH_*``
environment variables (:func:`kernel_base_env` for what every kernel has,
:func:`kernel_run_env` for one run's, :func:`adopt_code` to hand them to a pooled kernel) and
the code run silently before the first cell (:func:`bootstrap_steps`), which loads the
``dbutils`` shims (``dbutils.py`` / ``dbutils.R``), the Python-side magic
helpers and, for R, ``paths.R`` (``/Volumes``, ``/dbfs`` and ``/Workspace`` for R's file
functions), ``packages.R`` (``install.packages()`` without CRAN) and ``spark.R``
(``library(SparkR)`` fails with one clear line, sparklyr's ``spark_connect()`` too).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.local import kernel as kernel_package
from orchestrator.local.runtime.env_cache import configured_max_bytes
from orchestrator.local.runtime.installs import uses_uv
from orchestrator.local.runtime.kernel_process import KernelStartError
from orchestrator.local.runtime.lifetime import owner_env
from orchestrator.local.runtime.python_envs import (
    RuntimeEnvError,
    ensure_environment,
    environment_for,
    runtimes_root,
)
from orchestrator.local.runtime.resolution_memo import configured_ttl
from orchestrator.local.runtime.run_env import pip_command, stray_pip_variables
from orchestrator.local.runtime.spark_engines import engine_label
from orchestrator.local.runtime.spark_locations import kernel_variables

if TYPE_CHECKING:
    from collections.abc import Mapping

    from orchestrator.local.runtime.execution import ExecutionRequest
    from orchestrator.local.state.notebook_format import Language

__all__ = [
    "KERNEL_DIR",
    "KERNEL_START_TIMEOUT",
    "adopt_code",
    "bootstrap_steps",
    "kernel_argv",
    "kernel_base_env",
    "kernel_python",
    "kernel_run_env",
    "tool_env",
]

logger = logging.getLogger(__name__)

KERNEL_START_TIMEOUT = 60.0

#: the package that runs inside kernels (:mod:`orchestrator.local.kernel`)
KERNEL_DIR = Path(kernel_package.__file__).resolve().parent
PYTHON_SHIM = KERNEL_DIR / "dbutils.py"
R_SHIM = KERNEL_DIR / "r" / "dbutils.R"
R_SPARK_SHIM = KERNEL_DIR / "r" / "spark.R"
R_PACKAGES_SHIM = KERNEL_DIR / "r" / "packages.R"
R_PATHS_SHIM = KERNEL_DIR / "r" / "paths.R"
_PYTHON_HELPERS = (
    "from orchestrator.local.kernel.shell_magics import setup as __orch_setup\n"
    "__orch_setup(get_ipython()); del __orch_setup"
)
_PYTHON_SHIM_CODE = (
    "from orchestrator.local.kernel.dbutils import install as __orch_install\n"
    "__orch_install(get_ipython()); del __orch_install"
)


def kernel_python(spark_version: str | None = None) -> Path:
    """The interpreter of Python kernels on a cluster of ``spark_version`` (the default
    runtime's when None): its runtime profile's environment (:mod:`.python_envs`), made
    first when it is missing."""
    return _ready_python(spark_version, runtimes_root())


@functools.lru_cache(maxsize=16)
def _ready_python(spark_version: str | None, root: Path) -> Path:
    environment, _note = environment_for(spark_version, root=root)
    try:
        return ensure_environment(environment)
    except RuntimeEnvError as exc:
        raise KernelStartError(
            f"the Python environment of runtime {environment.profile.version} could not be "
            f"made ({exc}); `orchestrator local setup` makes it and shows why not"
        ) from exc


def kernel_argv(language: Language, *, python: Path | None = None) -> list[str]:
    """The kernel command line (with ``{connection_file}``) for a notebook language; a
    Python kernel runs on ``python`` (the default runtime's interpreter when None)."""
    if language == "PYTHON":
        return [
            str(python or kernel_python()),
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--HistoryManager.enabled=False",
        ]
    if language == "R":
        r_binary = shutil.which("R")
        if r_binary is None:
            raise KernelStartError("R notebooks need R with IRkernel, and R is not on the PATH")
        return [r_binary, "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"]
    raise KernelStartError(f"no kernel for {language} notebooks")


_CREDENTIAL_PREFIXES = ("DATABRICKS_", "ARM_", "AZURE_", "ORCHESTRATOR_", "GITHUB_TOKEN")
_CREDENTIAL_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "ACCOUNT_KEY", "SAS")


def _credential_variable(name: str) -> bool:
    """Variables a notebook must not inherit from whoever started the local workspace: the
    CI agent's workspace and cloud credentials (a cluster never sees them either). Notebooks get
    secrets through ``dbutils.secrets``."""
    upper = name.upper()
    return upper.startswith(_CREDENTIAL_PREFIXES) or any(w in upper for w in _CREDENTIAL_WORDS)


def tool_env() -> dict[str, str]:
    """The environment of a tool the runtime runs for a notebook (pip for a task's libraries):
    ours without credentials, with the user's pip cache."""
    env = {k: v for k, v in os.environ.items() if not _credential_variable(k)}
    cache_home = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    env.setdefault("PIP_CACHE_DIR", str(cache_home / "pip"))
    return env


def kernel_base_env(state_dir: Path, kernel_dir: Path) -> dict[str, str]:
    """What a kernel's environment holds whatever run it serves (a pooled kernel starts with
    only this): ours without credentials, plus the kernel's own ``HOME`` and ``TMPDIR``.

    ``HOME`` and ``TMPDIR`` are folders of ``kernel_dir``, which goes when the kernel is
    killed (:class:`~.kernel.Kernel`), so each run starts with an empty home and nothing it
    writes there outlives it. The user's own installs stay visible: ``PYTHONUSERBASE`` and
    ``R_LIBS_USER`` keep pointing into the real home, and ``PIP_CACHE_DIR`` at the real pip
    cache, so wheels and downloads are shared across runs (a repeated ``%pip install`` is
    fast). ``PYTHONPATH`` gets a folder that holds the kernel package alone
    (:func:`_kernel_only_path`), so the kernel imports the shims and nothing else of this
    tool. A non-UTF-8 locale is switched to UTF-8.
    """
    home = kernel_dir / "home"
    tmp = kernel_dir / "tmp"
    link_dir = kernel_dir / "pythonpath"
    for folder in (home, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    _kernel_only_path(link_dir)
    python_path = [str(link_dir)]
    if os.environ.get("PYTHONPATH"):
        python_path.append(os.environ["PYTHONPATH"])
    env = tool_env()
    real_home = Path.home()
    env.setdefault("PYTHONUSERBASE", str(real_home / ".local"))
    env.setdefault("R_LIBS_USER", str(real_home / "R" / "%p-library" / "%v"))
    env.update(owner_env(state_dir))  # the mark that lets nothing outlive us
    env.update(
        HOME=str(home),
        TMPDIR=str(tmp),
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(python_path),
        IPYTHONDIR=str(kernel_dir / "ipython"),
        JPY_PARENT_PID=str(os.getpid()),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    current = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    if "utf8" not in current.lower().replace("-", ""):
        # R prints non-ASCII text as <U+00E9> in the C locale.
        env["LC_ALL"] = "en_US.UTF-8" if sys.platform == "darwin" else "C.UTF-8"
    return env


def _kernel_only_path(link_dir: Path) -> None:
    """``link_dir/orchestrator/local/kernel``, a link to :mod:`orchestrator.local.kernel`,
    under two empty packages: a kernel imports ``orchestrator.local.kernel`` and nothing
    else of the tool (``import orchestrator.config`` fails there, as the tool's own
    dependencies are not the runtime's)."""
    local = link_dir / "orchestrator" / "local"
    local.mkdir(parents=True, exist_ok=True)
    for package in (link_dir / "orchestrator", local):
        init = package / "__init__.py"
        if not init.exists():
            init.write_text('"""Only the kernel package of the orchestrator, for kernels."""\n')
    link = local / "kernel"
    if not link.exists():
        link.symlink_to(KERNEL_DIR, target_is_directory=True)


def kernel_run_env(
    request: ExecutionRequest, *, control_dir: Path, pip_target: Path
) -> dict[str, str]:
    """What a kernel's environment holds for one run: the ``ORCH_*`` variables the shims
    read (``ORCH_PIP_COMMAND``: the installer ``%pip`` runs), the run's ``environment``,
    ``PIP_PREFIX`` and ``PATH`` (a stray ``!pip install`` goes into the run's environment,
    never the orchestrator's own: :mod:`.run_env`) and the ``ORCH_SPARK_*`` variables that
    point ``spark`` at the engine of the task's cluster."""
    secrets = {scope: dict(keys) for scope, keys in request.secrets.items()}
    env = dict(request.environment)
    env.update(
        ORCH_NOTEBOOK_PATH=request.notebook.workspace_path,
        ORCH_REPO_ROOT=str(request.notebook.repo_root or ""),
        ORCH_WORKSPACE_ROOT=str(request.workspace_root),
        ORCH_DBFS_ROOT=str(request.dbfs_root),
        ORCH_CONTROL_DIR=str(control_dir),
        ORCH_PARAMS=json.dumps(dict(request.parameters)),
        ORCH_SECRETS=json.dumps(secrets),
        ORCH_PYTHON=sys.executable,
        ORCH_PIP_TARGET=str(pip_target),
        ORCH_STATE_DB=str(request.state_db),
        ORCH_ENV_CACHE_MAX_BYTES=str(configured_max_bytes(os.environ)),
        # read by the kernel's %pip (pip_main): the server's setting, which kernels do not see
        ORCH_RESOLUTION_TTL=str(configured_ttl(os.environ)),
    )
    if uses_uv(os.environ):  # else the kernel's %pip is pip itself, with --target
        env["ORCH_PIP_COMMAND"] = pip_command()
    python = str(kernel_python(env.get("ORCH_SPARK_VERSION") or None))
    env.update(stray_pip_variables(pip_target, python, os.environ.get("PATH", "")))
    cluster = env.get("ORCH_CLUSTER_ID", "")
    env.update(kernel_variables(request.state_db.parent, cluster, engine_label()))
    return env


def adopt_code(language: Language, env: Mapping[str, str], cwd: Path) -> str:
    """Code that turns a pooled kernel into the kernel of a run: ``env`` added to its
    environment (what ``%sh`` and subprocesses inherit too) and ``cwd`` as its working
    directory, as a fresh kernel started with them would have."""
    env_json = json.dumps(dict(env))
    if language == "PYTHON":
        return (
            "import os as __orch_os, tempfile as __orch_tempfile\n"
            f"__orch_os.environ.update(__import__('json').loads({env_json!r}))\n"
            f"__orch_os.chdir({str(cwd)!r}); __orch_tempfile.tempdir = None\n"
            "del __orch_os, __orch_tempfile"
        )
    return (
        f"local({{ do.call(Sys.setenv, jsonlite::fromJSON({json.dumps(env_json)})); "
        f"setwd({json.dumps(str(cwd))}) }})"
    )


def bootstrap_steps(language: Language) -> list[tuple[str, str]]:
    """``(what, code)`` to run silently before the first cell, in order."""
    steps: list[tuple[str, str]] = []
    if language == "PYTHON":
        steps.append(("runtime helpers", _PYTHON_HELPERS))
        shim_file = PYTHON_SHIM
        shim_code = _PYTHON_SHIM_CODE
    else:
        shim_file = R_SHIM
        shim_code = f"source({json.dumps(str(R_SHIM), ensure_ascii=False)})"
    if shim_file.exists():
        steps.append(("dbutils shim", shim_code))
    else:
        logger.warning("%s is missing: dbutils is not available in notebooks", shim_file)
    if language == "R":
        steps.append(("R paths", f"source({json.dumps(str(R_PATHS_SHIM))})"))
        steps.append(("R packages", f"source({json.dumps(str(R_PACKAGES_SHIM))})"))
        steps.append(("no Spark for R", f"source({json.dumps(str(R_SPARK_SHIM))})"))
    return steps
