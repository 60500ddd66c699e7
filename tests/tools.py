"""The tools some tests need (R with IRkernel, jupyter_client, Spark's engine and client,
MLflow with scikit-learn, Azurite, a browser), and the one rule for when one is missing: such a
test is skipped on a developer's machine and fails in CI, where ``.ci/setup`` installs every one
of them.

"In CI" means the ``CI`` variable is set to something other than an empty string, ``0``,
``false``, ``no`` or ``off``: ``CI=false`` is a developer saying it is not CI. ``.ci/run``
exports ``CI=true``, and conftest.py fails the whole session at once when a tool is missing in
CI, before any test runs (a test that only narrows its coverage without R, such as the kernel
pool's, would otherwise pass quietly).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess

import pytest

__all__ = [
    "in_ci",
    "missing_tools",
    "require",
    "require_mlflow",
    "require_r",
    "require_r_packages",
    "require_spark",
]

_NOT_CI = ("", "0", "false", "no", "off")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in _NOT_CI


def require(missing: str | None) -> None:
    """Skip the test when ``missing`` names what is missing; fail it in CI."""
    if missing is None:
        return
    message = f"{missing} (.ci/setup installs it)"
    if in_ci():
        pytest.fail(f"CI cannot run this test: {message}")
    pytest.skip(message, allow_module_level=True)


def _module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


@functools.cache
def _irkernel() -> bool:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False
    done = subprocess.run(
        [rscript, "-e", "quit(status = !requireNamespace('IRkernel', quietly = TRUE))"],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def r_missing() -> str | None:
    if shutil.which("R") is None:
        return "R is not installed"
    if not _irkernel():
        return "IRkernel is not installed for R"
    return None


@functools.cache
def r_packages_missing() -> str | None:
    """The runtime's R packages (orchestrator/local/runtime/r_packages.py) that this machine's
    R lacks, looked up without loading them."""
    from orchestrator.local.runtime.r_packages import PACKAGES

    rscript = shutil.which("Rscript")
    if rscript is None:
        return "R is not installed"
    names = [p.name for p in PACKAGES if p.debian]
    code = "for (p in commandArgs(TRUE)) if (!nzchar(system.file(package = p))) cat(p, ' ')"
    done = subprocess.run(
        [rscript, "-e", code, *names], capture_output=True, text=True, check=False
    )
    missing = done.stdout.split() if done.returncode == 0 else names
    return f"R packages {', '.join(missing)} are not installed" if missing else None


def spark_missing() -> str | None:
    if not _module("pysail"):
        return "pysail (Spark's local engine) is not installed"
    if not _module("pyspark.sql.connect"):
        return "pyspark's Spark Connect client is not installed"
    return None


def mlflow_missing() -> str | None:
    if not _module("mlflow") or not _module("sklearn"):
        return "mlflow and scikit-learn (the mlflow extra) are not installed"
    return None


def require_mlflow() -> None:
    require(mlflow_missing())


def require_r() -> None:
    require(r_missing())


def require_r_packages() -> None:
    require(r_missing() or r_packages_missing())


def require_spark() -> None:
    require(spark_missing())


def missing_tools() -> list[str]:
    """What of the tools CI installs is missing on this machine."""
    from bench.kit.azurite import azurite_command
    from tests.local.screenshots import browser_missing

    found = [
        r_missing(),
        r_packages_missing(),
        None if _module("jupyter_client") else "jupyter_client is not installed",
        spark_missing(),
        mlflow_missing(),
        None if azurite_command() is not None else "Azurite is not installed",
        browser_missing(),
    ]
    return [m for m in found if m is not None]
