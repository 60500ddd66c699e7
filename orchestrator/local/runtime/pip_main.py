"""``python -m orchestrator.local.runtime.pip_main``: a ``%pip install`` of a notebook, run
by the kernel (``shell_magics.pip_install``) with the kernel's environment.

It runs in the orchestrator's interpreter (which has uv) and installs for the kernel's
(``--python``) through :func:`~.installs.install`. The tools' output is copied to stdout as
it comes (the kernel streams it into the cell); a failure ends with one ``ERROR: <reason>``
line and exit code 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from orchestrator.local.runtime.installs import InstallContext, InstallError, install
from orchestrator.local.runtime.resolution_memo import TTL_VARIABLE, configured_ttl

__all__ = ["main"]


def _stream(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``command``, copying its merged output to stdout; its exit code and output."""
    collected: list[str] = []
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            collected.append(line)
    return process.returncode, "".join(collected)


def _say(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pip_main")
    parser.add_argument("--target", required=True, type=Path)
    parser.add_argument("--python", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--work-dir", required=True, type=Path)
    parser.add_argument("--max-bytes", type=int)
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    context = InstallContext(
        target=options.target,
        python=options.python,
        state_dir=options.state_dir,
        cwd=Path.cwd(),
        work_dir=options.work_dir,
        env=dict(os.environ),
        max_bytes=options.max_bytes,
        # the workspace's window (``launch.kernel_run_env`` passes it on)
        resolution_ttl=configured_ttl({TTL_VARIABLE: os.environ.get("ORCH_RESOLUTION_TTL", "")}),
    )
    try:
        install(args, context, run=_stream, say=_say)
    except InstallError as exc:
        _say(f"ERROR: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
