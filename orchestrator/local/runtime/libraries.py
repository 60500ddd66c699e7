"""A task's ``libraries``, installed for its run before the notebook starts.

As Databricks documents for notebook tasks on a cluster, every library of the task is there
before the first cell runs. Locally they are notebook-scoped, like ``%pip``, and installed the
same way (:mod:`.installs`: uv and the environment cache) into the run's own folder (first on
``sys.path``; gone with the run). A serverless task's environment (the job's ``environments``
entry its ``environment_key`` names: ``spec.dependencies``, lines of a requirements file) comes
here too, as ``requirements`` lines (:func:`environment_libraries`):

* ``pypi`` (``package``, optional ``repo`` as the index URL), ``whl`` and ``requirements``
  (paths as ``dbfs:/...``, ``/dbfs/...``, ``/Volumes/...`` or ``/Workspace/...``, read from the
  local DBFS root and workspace mirror) go to pip, in one install;
* ``cran`` packages must already be installed for the machine's R: the local workspace does not
  download them, and says which one is missing;
* ``jar``, ``maven`` and ``egg`` (no JVM here; eggs were removed from Databricks) and anything
  else fail the run with one line naming the library. Nothing is silently dropped.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.local.runtime.installs import InstallContext, InstallError, install

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "LibraryError",
    "LibraryPlan",
    "environment_dependencies",
    "install_libraries",
    "library_path_mapper",
    "plan_libraries",
]

_POLL_SECONDS = 0.1
_UNSUPPORTED = {
    "jar": "jar libraries need a JVM cluster",
    "maven": "Maven libraries need a JVM cluster",
    "egg": "egg libraries are no longer supported by Databricks either",
}


class LibraryError(Exception):
    """A library of the task cannot be installed (the message is one line)."""


@dataclass(frozen=True)
class LibraryPlan:
    """What to install: pip's arguments (one install) and the CRAN packages to find."""

    pip_args: tuple[str, ...] = ()
    cran: tuple[str, ...] = ()
    described: tuple[str, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return bool(self.pip_args or self.cran)


def _text(library: Mapping[str, Any], kind: str, key: str) -> str:
    value = library.get(kind)
    if kind in ("whl", "requirements", "jar", "egg"):
        if isinstance(value, str) and value.strip():
            return value.strip()
    elif isinstance(value, dict):
        inner = value.get(key)
        if isinstance(inner, str) and inner.strip():
            return inner.strip()
    raise LibraryError(f"libraries: {json.dumps(dict(library))} has no {kind} {key}")


def plan_libraries(
    libraries: Sequence[Mapping[str, Any]],
    *,
    local_path: Callable[[str], Path],
    dependencies: Sequence[Any] = (),
) -> LibraryPlan:
    """Check every library and turn them into a :class:`LibraryPlan`; :class:`LibraryError`
    names the first one that cannot be installed here. ``local_path`` maps a library path
    (``dbfs:/``, ``/Volumes``, ``/Workspace``) to the file that holds it. ``dependencies``
    are a serverless environment's ``spec.dependencies``: requirements-file lines, their
    workspace paths mapped the same way."""
    pip: list[str] = []
    cran: list[str] = []
    described: list[str] = []
    for line in dependencies:
        if not isinstance(line, str) or not line.strip():
            raise LibraryError(f"environment dependencies: not a requirement line: {line!r}")
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise LibraryError(f"environment dependency {line!r}: {exc}") from None
        pip.extend(
            str(local_path(token)) if token.startswith(_WORKSPACE_PREFIXES) else token
            for token in tokens
        )
        described.append(f"environment dependency {line.strip()}")
    for library in libraries:
        if not isinstance(library, dict):
            raise LibraryError(f"libraries: not a library object: {json.dumps(library)}")
        kinds = [kind for kind in library if kind in _UNSUPPORTED or kind in _KINDS]
        if len(kinds) != 1 or len(library) != 1:
            raise LibraryError(
                f"libraries: not one library of a known type (pypi, whl, requirements, cran, "
                f"jar, maven): {json.dumps(library)}"
            )
        (kind,) = kinds
        if kind in _UNSUPPORTED:
            raise LibraryError(
                f"{kind} library {json.dumps(library[kind])} is not supported by the local "
                f"workspace: {_UNSUPPORTED[kind]}"
            )
        if kind == "pypi":
            package = _text(library, "pypi", "package")
            repo = library["pypi"].get("repo")
            if repo and not isinstance(repo, str):
                raise LibraryError(f"pypi library {package}: repo must be a URL, not {repo!r}")
            pip.extend(["--index-url", str(repo), package] if repo else [package])
            described.append(f"pypi {package}")
        elif kind == "cran":
            if library["cran"].get("repo"):
                raise LibraryError(
                    f"cran library {_text(library, 'cran', 'package')}: a repo cannot be used "
                    "by the local workspace (it does not download CRAN packages)"
                )
            cran.append(_text(library, "cran", "package"))
        else:
            path = _text(library, kind, "path")
            file = local_path(path)
            if not file.is_file():
                raise LibraryError(f"{kind} library {path}: no such file")
            pip.extend(["-r", str(file)] if kind == "requirements" else [str(file)])
            described.append(f"{kind} {path}")
    return LibraryPlan(tuple(pip), tuple(cran), tuple(described))


_KINDS = ("pypi", "whl", "requirements", "cran")
_WORKSPACE_PREFIXES = ("dbfs:/", "/dbfs/", "/Volumes/", "/Workspace/")


def environment_dependencies(environments: Any, environment_key: Any) -> tuple[Any, ...]:
    """The ``spec.dependencies`` of the job's environment ``environment_key`` names (none
    without a key; the jobs API has refused a key that names no environment)."""
    if not environment_key or not isinstance(environments, list):
        return ()
    for environment in environments:
        if isinstance(environment, dict) and environment.get("environment_key") == environment_key:
            spec = environment.get("spec")
            dependencies = spec.get("dependencies") if isinstance(spec, dict) else None
            return tuple(dependencies) if isinstance(dependencies, list) else ()
    return ()


def library_path_mapper(*, dbfs_root: Path, workspace_root: Path) -> Callable[[str], Path]:
    """``path -> file`` for library paths: ``dbfs:/x`` and ``/dbfs/x`` in the DBFS root,
    ``/Volumes/x`` in its ``Volumes`` folder, ``/Workspace/x`` in the workspace mirror."""
    roots = (
        ("dbfs:/", dbfs_root),
        ("/dbfs/", dbfs_root),
        ("/Volumes/", dbfs_root / "Volumes"),
        ("/Workspace/", workspace_root),
    )

    def local(path: str) -> Path:
        for prefix, root in roots:
            if path.startswith(prefix):
                rest = Path(os.path.normpath("/" + path[len(prefix) :])).relative_to("/")
                return root / rest
        raise LibraryError(
            f"library path {path}: expected dbfs:/, /dbfs/, /Volumes/ or /Workspace/"
        )

    return local


def _run(
    command: list[str], *, env: Mapping[str, str], check: Callable[[], None]
) -> tuple[int, str]:
    """Run ``command`` to its end (``check`` may stop it: the process is killed); its exit
    code and output."""
    # output to a file, not a pipe: nobody reads a pipe while polling, and a full one would
    # stop the tool
    with (
        tempfile.TemporaryFile() as output,
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        ) as process,
    ):
        try:
            while process.poll() is None:
                check()
                time.sleep(_POLL_SECONDS)
        except BaseException:
            process.kill()
            raise
        output.seek(0)
        text = output.read().decode("utf-8", "replace")
    return process.returncode, text


def install_libraries(
    plan: LibraryPlan,
    *,
    context: InstallContext,
    check: Callable[[], None],
    say: Callable[[str], None],
) -> None:
    """Install ``plan`` for one run: Python packages into ``context.target``, CRAN packages
    looked up. Raises :class:`LibraryError` with the installer's reason, or naming the
    missing R packages."""
    if plan.pip_args:

        def run(command: list[str], env: dict[str, str]) -> tuple[int, str]:
            return _run(command, env=env, check=check)

        try:
            install(plan.pip_args, context, run=run, say=say)
        except InstallError as exc:
            what = ", ".join(plan.described)
            raise LibraryError(f"cannot install the task's libraries ({what}): {exc}") from None
    if plan.cran:
        env = context.env
        rscript = shutil.which("Rscript", path=env.get("PATH", os.defpath))
        if rscript is None:
            raise LibraryError(f"cran libraries {', '.join(plan.cran)} need R, not on the PATH")
        names = ", ".join(json.dumps(name) for name in plan.cran)
        code = (
            f"missing <- Filter(function(p) !requireNamespace(p, quietly = TRUE), c({names}));"
            "if (length(missing)) { cat(paste(missing, collapse = ', ')); quit(status = 1) }"
        )
        code_, missing = _run([rscript, "-e", code], env=env, check=check)
        if code_:
            raise LibraryError(
                f"cran library {missing.strip().splitlines()[-1]} is not installed for this "
                "machine's R (the local workspace does not download CRAN packages; install it, "
                "e.g. from Debian's r-cran-* packages)"
            )
