"""Installing Python packages into a run's environment: ``%pip install``, a task's
``libraries`` and a serverless ``environments`` spec all come here (:func:`install`).

Installs go into the run's ``site-packages`` folder (``--target``), never into the runtime's
interpreter. They are done with uv (``uv pip install``, with its cache under the workspace's
state dir) when uv is there and understands the arguments, else with pip, saying why:

* the first install into an empty folder is resolved first (``uv pip compile``); the
  environment built for that resolution is kept in :mod:`.env_cache` and a later run with the
  same resolution gets a hard-linked copy of it instead of an install; the same requirements
  again within ten minutes take that resolution without asking the index again
  (:mod:`.resolution_memo`, which says what that costs);
* a later install into a folder that already holds packages (a second ``%pip`` cell) is a
  plain ``uv pip install --target``, which keeps what is there and adds to it;
* requirements that name a local file are keyed by the file's content; directories, editable
  installs, VCS and URL requirements are installed each time (uv still caches what it
  downloads and builds).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.local.runtime.env_cache import EnvCache, cache_root, link_tree, resolution_key
from orchestrator.local.runtime.resolution_memo import DEFAULT_TTL, ResolutionMemo, memo_key

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "INSTALLER_VARIABLE",
    "InstallContext",
    "InstallError",
    "Runner",
    "install",
    "parse_pip_args",
    "uses_uv",
    "uv_binary",
]

#: ``ORCHESTRATOR_LOCAL_INSTALLER=pip`` in the orchestrator's environment: installs with pip,
#: as Databricks does (slower, no environment cache; for comparison, or if uv misbehaves)
INSTALLER_VARIABLE = "ORCHESTRATOR_LOCAL_INSTALLER"

#: ``run(command, env) -> (exit code, output)``: how the caller runs a tool (streaming it into a
#: cell, or polling for a cancel)
Runner = Callable[[list[str], dict[str, str]], tuple[int, str]]


class InstallError(Exception):
    """The install failed; the message is one line (the tool's last error)."""


@dataclass(frozen=True)
class InstallContext:
    """Where and for what an install is done."""

    target: Path  # the run's site-packages folder
    python: str  # the kernel's interpreter: what the packages are resolved and built for
    state_dir: Path  # the workspace's state dir: the caches live under it
    cwd: Path  # relative paths in the arguments are relative to it (the notebook's folder)
    work_dir: Path  # a folder of the run for the install's own files
    env: Mapping[str, str] = field(default_factory=dict)  # without credentials
    max_bytes: int | None = None  # the environment cache's bound (None: the default)
    use_uv: bool = True  # False: pip (``ORCHESTRATOR_LOCAL_INSTALLER=pip``)
    resolution_ttl: float = DEFAULT_TTL  # seconds a resolution is reused (:mod:`.resolution_memo`)


@dataclass
class _UvArgs:
    """``%pip install`` arguments read for uv."""

    requirements: list[str] = field(default_factory=list)  # lines of a requirements file
    options: list[str] = field(default_factory=list)  # uv options for compile and install
    install_only: list[str] = field(default_factory=list)  # uv options for install only
    cacheable: bool = True


_INDEX_OPTIONS = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "-c": "--constraint",
    "--constraint": "--constraint",
}
_FILE_OPTIONS = {"-r": "-r", "--requirement": "-r"}
_FLAGS = {
    "--no-index": ("--no-index", False),
    "--no-deps": ("--no-deps", False),
    "--pre": ("--prerelease=allow", False),
    "-U": ("--upgrade", True),
    "--upgrade": ("--upgrade", True),
    "--force-reinstall": ("--reinstall", True),
    "--no-build-isolation": ("--no-build-isolation", False),
}
_IGNORED_FLAGS = frozenset(
    {"-q", "--quiet", "-v", "--verbose", "--no-input", "--no-cache-dir"}
    | {"--disable-pip-version-check"}
)
_IGNORED_WITH_VALUE = frozenset({"--upgrade-strategy", "--progress-bar", "--timeout"})


def parse_pip_args(args: Sequence[str], cwd: Path) -> _UvArgs | str:
    """``%pip install`` arguments as uv takes them, or the reason uv cannot take them (an
    option it does not know the same way: pip does that install)."""
    parsed = _UvArgs()
    items = list(args)
    index = 0
    while index < len(items):
        arg = items[index]
        name, has_value, inline = arg.partition("=")
        if arg.startswith("-") and (name in _INDEX_OPTIONS or name in _FILE_OPTIONS):
            if has_value:
                value = inline
            else:
                index += 1
                if index == len(items):
                    return f"{arg} needs a value"
                value = items[index]
            if name in _FILE_OPTIONS:
                file = Path(value) if Path(value).is_absolute() else cwd / value
                parsed.requirements.append(f"-r {file}")
            else:
                option = _INDEX_OPTIONS[name]
                if option == "--constraint" and not Path(value).is_absolute():
                    value = str(cwd / value)
                parsed.options += [option, value]
        elif arg in _FLAGS:
            option, install_only = _FLAGS[arg]
            (parsed.install_only if install_only else parsed.options).append(option)
        elif arg in _IGNORED_FLAGS:
            pass
        elif name in _IGNORED_WITH_VALUE:
            if not has_value:
                index += 1
        elif arg in ("-e", "--editable"):
            index += 1
            if index == len(items):
                return f"{arg} needs a value"
            parsed.requirements.append(f"-e {_local_path(items[index], cwd)}")
            parsed.cacheable = False
        elif arg.startswith("-"):
            return f"uv does not take pip's {name} the same way"
        else:
            parsed.requirements.append(_local_path(arg, cwd))
        index += 1
    return parsed


def _local_path(requirement: str, cwd: Path) -> str:
    """A relative path requirement (``./pkg.tar.gz``, ``dist/x.whl``) made absolute."""
    if requirement.startswith((".", "/")) or requirement.endswith((".whl", ".tar.gz", ".zip")):
        path = Path(requirement)
        if not path.is_absolute() and (cwd / path).exists():
            return str(cwd / path)
    return requirement


def uses_uv(environ: Mapping[str, str]) -> bool:
    """Whether installs use uv: unless ``ORCHESTRATOR_LOCAL_INSTALLER=pip``."""
    return environ.get(INSTALLER_VARIABLE, "").strip().lower() != "pip"


def uv_binary() -> str | None:
    """The uv executable: the one installed with the orchestrator, else one on the PATH."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv")
    try:
        return str(find_uv_bin())
    except FileNotFoundError:
        return shutil.which("uv")


def _last_error(output: str, fallback: str) -> str:
    """The reason of a failed install in one line: pip's last ``ERROR:`` line, else uv's last
    ``cause:`` line (its explanation), else uv's ``error:`` line, else the last line."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    for prefix in ("ERROR:", "cause:", "error:"):
        found = [line[len(prefix) :].strip() for line in lines if line.startswith(prefix)]
        if found:
            return found[-1]
    return lines[-1] if lines else fallback


def install(
    args: Sequence[str],
    context: InstallContext,
    *,
    run: Runner,
    say: Callable[[str], None],
) -> None:
    """``pip install <args>`` into ``context.target``: with uv (and the environment cache),
    or with pip when uv is missing or does not take the arguments. Raises
    :class:`InstallError`."""
    context.target.mkdir(parents=True, exist_ok=True)
    uv = uv_binary() if context.use_uv else None
    parsed = parse_pip_args(args, context.cwd)
    if not context.use_uv:
        pass  # chosen: pip, as on Databricks
    elif uv is None:
        say("uv is not installed (it comes with orchestrator[local]): installing with pip\n")
    elif isinstance(parsed, str):
        say(f"{parsed}: installing with pip\n")
    else:
        _install_uv(uv, parsed, context, run=run, say=say)
        return
    _install_pip(args, context, run=run)


def _tool_env(context: InstallContext) -> dict[str, str]:
    env = {k: v for k, v in context.env.items() if not k.startswith(("PIP_", "UV_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(
        UV_CACHE_DIR=str(cache_root(context.state_dir) / "uv"),
        UV_NO_PROGRESS="1",
        UV_PYTHON_DOWNLOADS="never",  # the interpreter is the kernel's: never fetch one
        NO_COLOR="1",
        PIP_NO_COLOR="1",
        PIP_PROGRESS_BAR="off",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    # an index the user configured for pip in the environment is one for uv too
    for pip_name, uv_name in (
        ("PIP_INDEX_URL", "UV_INDEX_URL"),
        ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL"),
    ):
        if context.env.get(pip_name):
            env[uv_name] = context.env[pip_name]
    if context.env.get("PIP_CERT") and not env.get("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = context.env["PIP_CERT"]  # a TLS-inspecting proxy's CA
    return env


def _install_pip(
    args: Sequence[str],
    context: InstallContext,
    *,
    run: Runner,
) -> None:
    command = [context.python, "-m", "pip", "install", "--no-input", "--target"]
    command += [str(context.target), *args]
    env = {k: v for k, v in context.env.items() if k not in ("PIP_TARGET", "PIP_PREFIX")}
    env.update(PIP_NO_COLOR="1", PIP_PROGRESS_BAR="off", PIP_DISABLE_PIP_VERSION_CHECK="1")
    code, output = run(command, env)
    if code:
        raise InstallError(f"pip install failed: {_last_error(output, f'exit code {code}')}")


def _install_uv(
    uv: str,
    parsed: _UvArgs,
    context: InstallContext,
    *,
    run: Runner,
    say: Callable[[str], None],
) -> None:
    env = _tool_env(context)
    context.work_dir.mkdir(parents=True, exist_ok=True)
    requested = context.work_dir / f"requested-{os.getpid()}-{id(parsed)}.txt"
    requested.write_text("".join(f"{line}\n" for line in parsed.requirements), encoding="utf-8")
    base = [uv, "pip", "--no-config"]
    python = ["--python", context.python]
    sources = [str(requested), *parsed.options]
    empty = not any(context.target.iterdir())
    if not (empty and parsed.cacheable):
        command = [*base, "install", *python, "--target", str(context.target), "-r"]
        code, output = run([*command, *sources, *parsed.install_only], env)
        if code:
            raise InstallError(f"uv pip install failed: {_last_error(output, f'exit {code}')}")
        return
    pinned_file = context.work_dir / f"resolved-{os.getpid()}-{id(parsed)}.txt"
    memo = ResolutionMemo(cache_root(context.state_dir), ttl=context.resolution_ttl)
    memo_as = memo_key(
        parsed.requirements,
        parsed.options,
        parsed.install_only,
        python=context.python,
        index_env={k: v for k, v in env.items() if k in _INDEX_VARIABLES},
    )
    recalled = None if memo_as is None else memo.recall(memo_as)
    if memo_as is not None and recalled is not None:
        pinned = recalled
        pinned_file.write_text("".join(f"{line}\n" for line in pinned), encoding="utf-8")
        say(f"Resolved as before ({len(pinned)} packages, resolution memo {memo_as[:12]})\n")
    else:
        compile_command = [*base, "compile", *python, "--no-header", "--no-annotate", "--quiet"]
        compile_command += [*sources, "-o", str(pinned_file)]
        code, output = run(compile_command, env)
        if code:
            reason = _last_error(output, "uv failed")
            raise InstallError(f"cannot resolve the requirements: {reason}")
        pinned = [
            line.strip()
            for line in pinned_file.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]
        if memo_as is not None:
            memo.remember(memo_as, pinned)
    facts = _resolution_facts(pinned, parsed, context)
    cache = EnvCache(cache_root(context.state_dir), **_bound(context))
    if facts is not None:
        key = resolution_key(facts)
        cached = cache.lookup(key)
        if cached is not None:
            files = link_tree(cached, context.target)
            say(
                f"Reused the environment built for this resolution ({len(pinned)} packages, "
                f"{files} files; environment cache key {key[:12]})\n"
            )
            return
        built = cache.building(key)
        try:
            command = [*base, "install", *python, "--target", str(built), "-r", str(pinned_file)]
            code, output = run([*command, *_index_options(parsed.options)], env)
            if code:
                raise InstallError(f"uv pip install failed: {_last_error(output, f'exit {code}')}")
            stored = cache.store(key, built)
        except BaseException:
            cache.discard(built)
            raise
        link_tree(stored, context.target)
        say(f"Stored the environment for this resolution (environment cache key {key[:12]})\n")
        return
    command = [*base, "install", *python, "--target", str(context.target), "-r", str(pinned_file)]
    code, output = run([*command, *_index_options(parsed.options), *parsed.install_only], env)
    if code:
        raise InstallError(f"uv pip install failed: {_last_error(output, f'exit {code}')}")


#: the variables that name the index uv resolves against (:func:`_tool_env`)
_INDEX_VARIABLES = frozenset({"UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX"})


def _index_options(options: Sequence[str]) -> list[str]:
    """The index options of ``options`` (a resolved file names every requirement itself)."""
    kept: list[str] = []
    pairs = iter(options)
    for option in pairs:
        if option in ("--index-url", "--extra-index-url", "--find-links"):
            kept += [option, next(pairs)]
        elif option == "--constraint":
            next(pairs)
        elif option in ("--no-index", "--prerelease=allow", "--no-build-isolation", "--no-deps"):
            kept.append(option)
    return kept


def _bound(context: InstallContext) -> dict[str, int]:
    return {} if context.max_bytes is None else {"max_bytes": context.max_bytes}


def _resolution_facts(
    pinned: Sequence[str], parsed: _UvArgs, context: InstallContext
) -> dict[str, object] | None:
    """What decides the environment of a resolution, or None when it cannot be keyed (a
    requirement that is a folder, a URL or VCS: its content is not known from its name)."""
    hashes: dict[str, str] = {}
    for line in pinned:
        requirement = line.split(";", 1)[0].strip()
        if "==" in requirement and "@" not in requirement and "/" not in requirement:
            continue
        path_text = requirement.split(" @ ", 1)[-1].strip()
        if path_text.startswith("file://"):
            path_text = path_text[len("file://") :]
        path = Path(path_text) if Path(path_text).is_absolute() else context.cwd / path_text
        if not path.is_file():
            return None
        hashes[line] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "python": os.path.realpath(context.python),
        "python_version": sys.version if context.python == sys.executable else "",
        "pinned": list(pinned),
        "files": hashes,
        "options": _index_options(parsed.options),
    }
