"""The Python environment a runtime profile's kernels run in: :func:`ensure_environment`.

A notebook on Databricks sees its runtime's libraries, not whatever the orchestrator happens
to depend on. So each profile with a lock (``profiles/<version>.txt``, from its
``profiles/<version>.in``; :mod:`.spark_versions`) gets a virtual environment of its own,
made by ``uv venv`` and ``uv pip install --require-hashes --no-deps`` from that lock, and
Python kernels (and the kernel fork server) run on its interpreter. ``ipykernel`` is in
every lock; the kernel shims (:mod:`orchestrator.local.kernel`) need nothing else beyond the
standard library, and reach the kernel through ``PYTHONPATH`` (:func:`.launch.kernel_base_env`).

Where they live: ``$ORCHESTRATOR_RUNTIMES_DIR``, else ``$XDG_CACHE_HOME/orchestrator/runtimes``
(``~/.cache/orchestrator/runtimes``), one folder per lock: ``<version>-<hash>``, the hash of
the lock's text, this interpreter's version and how environments are made. A changed lock is a
new folder; several workspaces and checkouts on a machine share one, and CI can cache the
folder. An environment
is complete once its ``.complete`` file exists (written last), so a half-made one (a killed
setup) is made again; a file lock keeps two processes from making the same one at once.

``orchestrator local setup`` makes the default runtime's ahead (``.ci/setup`` calls it), and
others' when named (``--profile 16.4``, ``--all``); a kernel start that finds its environment
missing makes it then, saying so in one line before and one after (in the run's output too,
:meth:`.executor` ``runtime_python``).
From uv's warm cache that takes 10-15 s to install and as long again to compile the bytecode
(a minute on a loaded 2-core machine); a machine that downloads the wheels (~300 MB) takes
longer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.local.runtime.spark_versions import (
    DEFAULT_SPARK_VERSION,
    PROFILES,
    RuntimeProfile,
    environment_profile,
)
from orchestrator.local.runtime.spark_versions import profile as profile_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "PROFILE_DIR",
    "PythonEnvironment",
    "RuntimeEnvError",
    "ensure_environment",
    "environment_for",
    "locked_environments",
    "runtimes_root",
    "select_environments",
]

logger = logging.getLogger(__name__)

#: the profiles' library lists (``<version>.in``) and locks (``<version>.txt``)
PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
#: seconds one ``uv`` step may take (a cold download of a profile is ~300 MB)
UV_TIMEOUT = 1800.0
_COMPLETE = ".complete"
#: how an environment is made; a change (bytecode compiled ahead, say) makes new ones
_LAYOUT = "2"


class RuntimeEnvError(RuntimeError):
    """A profile's environment could not be made; the message says how to make it."""


@dataclass(frozen=True)
class PythonEnvironment:
    """The environment of one locked profile, made or not."""

    profile: RuntimeProfile
    lock: Path
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def ready(self) -> bool:
        return (self.root / _COMPLETE).is_file() and self.python.exists()


def runtimes_root() -> Path:
    """Where the environments live (see the module docstring)."""
    explicit = os.environ.get("ORCHESTRATOR_RUNTIMES_DIR")
    if explicit:
        return Path(explicit)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "orchestrator" / "runtimes"


def _environment(profile: RuntimeProfile, root: Path | None) -> PythonEnvironment:
    lock = PROFILE_DIR / f"{profile.version}.txt"
    digest = hashlib.sha256(lock.read_bytes())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}/{_LAYOUT}".encode())
    base = runtimes_root() if root is None else root
    return PythonEnvironment(profile, lock, base / f"{profile.version}-{digest.hexdigest()[:12]}")


def environment_for(
    spark_version: str | None, *, root: Path | None = None
) -> tuple[PythonEnvironment, str | None]:
    """The environment a cluster of ``spark_version`` runs its Python kernels in (the default
    runtime's when None), and the note :func:`.spark_versions.environment_profile` gives when
    it is another profile's."""
    profile, note = environment_profile(spark_version or DEFAULT_SPARK_VERSION)
    return _environment(profile, root), note


def locked_environments(*, root: Path | None = None) -> list[PythonEnvironment]:
    """Every locked profile's environment (one per runtime version)."""
    seen: dict[str, PythonEnvironment] = {}
    for profile in PROFILES:
        if profile.locked and profile.version not in seen:
            seen[profile.version] = _environment(profile, root)
    return list(seen.values())


def select_environments(
    names: Sequence[str], *, every: bool = False, root: Path | None = None
) -> list[PythonEnvironment]:
    """The environments ``orchestrator local setup`` makes: every locked profile's, those
    named (a runtime version, ``16.4``, or a ``spark_version`` key), or the default
    runtime's. A name with no library set of its own is refused, naming the ones there are
    (the nearest profile's environment is not what its user asked for)."""
    everything = locked_environments(root=root)
    if every:
        return everything
    if not names:
        return [environment_for(None, root=root)[0]]
    by_version = {e.profile.version: e for e in everything}
    chosen: dict[str, PythonEnvironment] = {}
    for name in names:
        found = profile_of(name)
        version = found.version if found is not None else name
        if version not in by_version:
            raise ValueError(
                f"{name!r} is no runtime with a local library set; those with one: "
                + ", ".join(sorted(by_version))
            )
        chosen.setdefault(version, by_version[version])
    return list(chosen.values())


def uv_binary() -> str:
    """``uv``: beside this interpreter (the package depends on it), else on the PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise RuntimeEnvError(
            "the notebook runtime's environments are made with uv, which is not installed "
            "(pip install uv)"
        )
    return found


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=UV_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeEnvError(f"{' '.join(command[:3])}: {exc}") from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-2000:]
        raise RuntimeEnvError(f"{' '.join(command[:3])} failed:\n{tail}")


def _uv_env() -> dict[str, str]:
    """uv's environment: ours without ``VIRTUAL_ENV``/``PIP_*`` settings aimed at the tool."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env.setdefault("UV_NO_PROGRESS", "1")
    return env


def ensure_environment(
    environment: PythonEnvironment, *, progress: Callable[[str], None] | None = None
) -> Path:
    """The interpreter of ``environment``, made first when it is not (``progress`` gets one
    line when it is made, and one when done). Safe to call from several processes at once."""
    if environment.ready:
        return environment.python
    with _locked(environment.root.parent / f".{environment.root.name}.lock"):
        if environment.ready:  # another process made it meanwhile
            return environment.python
        say = progress or logger.warning
        say(
            f"Setting up the Python libraries of runtime {environment.profile.version} "
            f"in {environment.root} (once; `orchestrator local setup` does it ahead)"
        )
        started = time.monotonic()
        shutil.rmtree(environment.root, ignore_errors=True)
        uv, env = uv_binary(), _uv_env()
        # the tool's own interpreter: the one version of Python this machine is known to have
        base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        python = str(base if base.exists() else sys.executable)
        try:
            _run([uv, "venv", "--quiet", "--python", python, str(environment.root)], env)
            _run(
                [
                    uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(environment.python),
                    "--require-hashes",
                    "--no-deps",
                    # compiled now: where PYTHONDONTWRITEBYTECODE is set (CI machines, this
                    # one) every kernel would compile pandas, pyarrow and pyspark again at
                    # import, 1.2 CPU-s more for a Spark notebook
                    "--compile-bytecode",
                    "--requirement",
                    str(environment.lock),
                ],
                env,
            )
        except RuntimeEnvError:
            shutil.rmtree(environment.root, ignore_errors=True)
            raise
        (environment.root / _COMPLETE).write_text(environment.lock.name + "\n")
        say(
            f"Runtime {environment.profile.version}'s Python libraries are ready "
            f"({time.monotonic() - started:.0f} s)"
        )
    return environment.python
