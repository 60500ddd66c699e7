"""A run's own Python environment, layered over the runtime's interpreter, and the variables
that send every install of the run into it.

Managed installs (``%pip``, task libraries, serverless environments: :mod:`.installs`) go
into the run's ``site-packages`` folder (``<scratch>/site-packages``), which the kernel puts
first on ``sys.path``. The same folder is the ``site-packages`` of a prefix,
``<scratch>/python-env`` (:func:`run_env_prefix`; ``lib/pythonX.Y/site-packages`` there is a
link to it), so pip run with that prefix installs into it too.

A stray ``!pip install`` or ``%sh pip install`` must not reach the runtime's own environment
either. ``PIP_TARGET`` did that but breaks every source build: pip installs a build's
dependencies into an isolated folder with ``--prefix``, which an inherited ``--target``
contradicts (``Cannot set --home and --prefix together``). The kernels get ``PIP_PREFIX``
instead (the run's prefix: the build's own ``--prefix`` on the command line overrides it)
with ``PIP_IGNORE_INSTALLED`` (pip neither skips nor uninstalls what the runtime has: an
upgrade lands in the run, never in the runtime). ``pip uninstall`` is not covered: it
removes what it finds, as on a cluster. The run's ``bin``
folders come first on ``PATH``, so console scripts the run installs can be called.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = ["pip_command", "run_env_prefix", "stray_pip_variables"]

_PURELIB_CODE = (
    "import sys, sysconfig; "
    "print(sysconfig.get_path('purelib', sysconfig.get_preferred_scheme('prefix'), "
    "vars={'base': sys.argv[1], 'platbase': sys.argv[1]}))"
)


def run_env_prefix(scratch_dir: Path) -> Path:
    """The prefix folder of a run's environment (gone with the run's scratch)."""
    return scratch_dir / "python-env"


@functools.lru_cache(maxsize=16)
def _relative_purelib(python: str) -> str:
    """``lib/pythonX.Y/site-packages`` as ``python`` lays out a prefix."""
    if python == sys.executable:
        scheme = sysconfig.get_preferred_scheme("prefix")
        path = sysconfig.get_path("purelib", scheme, vars={"base": "/P", "platbase": "/P"})
    else:
        path = subprocess.run(
            [python, "-c", _PURELIB_CODE, "/P"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    return str(Path(path).relative_to("/P"))


def stray_pip_variables(target: Path, python: str, base_path: str) -> dict[str, str]:
    """The variables that keep a kernel's own pip runs in the run's ``target`` folder (its
    ``site-packages``): the prefix beside it is laid out here, its ``site-packages`` a link
    to ``target``, for the interpreter ``python``."""
    prefix = run_env_prefix(target.parent)
    linked = prefix / _relative_purelib(python)
    if not linked.is_symlink():
        linked.parent.mkdir(parents=True, exist_ok=True)
        linked.symlink_to(os.path.relpath(target, linked.parent), target_is_directory=True)
    path = os.pathsep.join(p for p in (str(target / "bin"), str(prefix / "bin"), base_path) if p)
    return {"PIP_PREFIX": str(prefix), "PIP_IGNORE_INSTALLED": "1", "PATH": path}


def pip_command() -> str:
    """``ORCH_PIP_COMMAND``: the command (JSON list) a kernel runs for ``%pip install``: the
    runtime's installer (:mod:`.pip_main`) in the orchestrator's interpreter, which has uv.

    Isolated (``-I``) from the kernel's environment, whose ``PYTHONPATH`` holds a package
    folder named ``orchestrator`` with only the kernel's code in it; the orchestrator's own
    package is put first on the path by name instead."""
    root = str(Path(__file__).resolve().parents[3])  # the folder holding ``orchestrator/``
    program = (
        f"import runpy, sys; sys.path.insert(0, {root!r}); "
        "runpy.run_module('orchestrator.local.runtime.pip_main', run_name='__main__')"
    )
    return json.dumps([sys.executable, "-I", "-c", program])
