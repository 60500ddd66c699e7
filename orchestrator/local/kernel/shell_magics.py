"""Kernel-side helpers of the notebook runtime, imported inside the Python kernel.

This module owns what the executor's generated code calls in a Python kernel: ``%sh``
(:func:`run_shell`), ``%pip install`` (:func:`pip_install`, always into the run's folder
``$ORCH_PIP_TARGET``, never into the runtime's own environment) and :func:`setup`, run once
before the first cell, which makes ``!cmd`` lines fail the cell on a non-zero exit and
replaces IPython's own ``%pip`` with :func:`pip_install`, so a ``%pip`` line anywhere in a
cell (after a ``!cp`` line, in a loop) is the managed one, as on Databricks. Output of the
commands streams into the cell as it comes. Only the standard library is used here.
"""

from __future__ import annotations

import codecs
import importlib
import json
import os
import select
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["ShellCommandError", "pip_install", "pip_magic", "run_shell", "setup"]


class ShellCommandError(RuntimeError):
    """A shell command (``%sh``, ``!cmd``, ``%pip``) exited with a non-zero code."""


def _stream(
    command: list[str], *, env: dict[str, str] | None = None, lines: list[str] | None = None
) -> int:
    """Run ``command``, copying its merged stdout/stderr to ``sys.stdout``; its exit code.
    With ``lines``, the output's complete lines are appended to it as well.

    Reading stops when the command has exited and its pipe stays quiet for a moment, so a
    background process that inherited the pipe (``sleep 60 &``) does not hold the cell.
    """
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    assert process.stdout is not None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    fd = process.stdout.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            text = decoder.decode(chunk)
            sys.stdout.write(text)
            sys.stdout.flush()
            if lines is not None:
                pending += text
        elif process.poll() is not None:
            break
    text = decoder.decode(b"", final=True)
    sys.stdout.write(text)
    if lines is not None:
        lines.extend((pending + text).splitlines())
    process.stdout.close()
    return process.wait()


#: bash's ``pwd`` for ``%sh``: a folder under the local workspace root reads as
#: ``/Workspace/...``, as ``%sh pwd`` shows on Databricks Runtime 14+ (``$PWD`` and ``/bin/pwd``
#: keep the real path, which is where the shell really is)
_BASH_CWD_FUNCTION = (
    '() { local p; p="$(builtin pwd "$@")" || return; '
    'case "$p" in "$ORCH_WORKSPACE_ROOT"|"$ORCH_WORKSPACE_ROOT"/*) '
    'printf "%s\\n" "/Workspace${p#"$ORCH_WORKSPACE_ROOT"}";; '
    '*) printf "%s\\n" "$p";; esac; }'
)


def _shell_env(shell: str) -> dict[str, str] | None:
    """The environment of a ``%sh`` script: the kernel's, plus the exported ``pwd`` function
    when the shell is bash and the workspace root is known (else None: inherit as is)."""
    root = os.environ.get("ORCH_WORKSPACE_ROOT", "").rstrip("/")
    if not root or Path(shell).name != "bash":
        return None
    return {**os.environ, "ORCH_WORKSPACE_ROOT": root, "BASH_FUNC_pwd%%": _BASH_CWD_FUNCTION}


def run_shell(script: str) -> None:
    """Run a ``%sh`` cell's script with bash; raise :class:`ShellCommandError` on failure."""
    shell = shutil.which("bash") or "/bin/sh"
    code = _stream([shell, "-c", script], env=_shell_env(shell))
    if code != 0:
        raise ShellCommandError(f"shell command exited with code {code}")


def _pip_command(target: str, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command of a ``%pip install``: the runtime's installer (``$ORCH_PIP_COMMAND``,
    uv with the workspace's environment cache) when the runtime gave one, else pip itself;
    both with ``--target``. The variables that send a stray pip into the run's prefix are not
    passed on: the target is given."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_PREFIX", "PIP_TARGET")}
    env.update(PIP_NO_COLOR="1", PIP_PROGRESS_BAR="off")
    installer = os.environ.get("ORCH_PIP_COMMAND")
    if installer:
        state_db = os.environ.get("ORCH_STATE_DB", "")
        control = os.environ.get("ORCH_CONTROL_DIR") or str(Path(target).parent)
        command = [*json.loads(installer), "--target", target, "--python", sys.executable]
        command += ["--state-dir", str(Path(state_db).parent) if state_db else control]
        command += ["--work-dir", str(Path(control) / "pip")]
        if os.environ.get("ORCH_ENV_CACHE_MAX_BYTES"):
            command += ["--max-bytes", os.environ["ORCH_ENV_CACHE_MAX_BYTES"]]
        return [*command, "--", *args], env
    python = os.environ.get("ORCH_PYTHON") or sys.executable
    command = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    return [*command, "--target", target, *args], env


def pip_install(args: list[str]) -> None:
    """``%pip install <args>`` into ``$ORCH_PIP_TARGET``, which goes first on sys.path."""
    target = os.environ["ORCH_PIP_TARGET"]
    Path(target).mkdir(parents=True, exist_ok=True)
    command, env = _pip_command(target, args)
    output: list[str] = []
    code = _stream(command, env=env, lines=output)
    if target not in sys.path:
        sys.path.insert(0, target)
    importlib.invalidate_caches()
    if code != 0:
        # the tools' own lines are in the output above; the error names the last one
        errors = [line[len("ERROR:") :].strip() for line in output if line.startswith("ERROR:")]
        detail = errors[-1] if errors else f"exited with code {code}"
        raise ShellCommandError(f"pip install failed: {detail}")


def pip_magic(line: str) -> None:
    """The ``%pip`` line magic: ``%pip install ...`` anywhere in a cell."""
    try:
        args = shlex.split(line, comments=True)
    except ValueError as exc:
        raise ShellCommandError(f"%pip: cannot parse the command line: {exc}") from None
    if not args or args[0] != "install":
        raise ShellCommandError("only %pip install is supported by the local workspace")
    if len(args) == 1:
        raise ShellCommandError("%pip install: no package given")
    pip_install(args[1:])


def setup(ipython: Any) -> None:
    """Make ``!cmd`` raise :class:`ShellCommandError` when the command exits non-zero, and
    ``%pip`` the managed :func:`pip_magic`."""
    original = ipython.system

    def system(cmd: str) -> None:
        ipython.user_ns["_exit_code"] = 0
        original(cmd)
        code = ipython.user_ns.get("_exit_code", 0)
        if code:
            raise ShellCommandError(f"shell command {cmd!r} exited with code {code}")

    ipython.system = system
    ipython.register_magic_function(pip_magic, "line", "pip")
