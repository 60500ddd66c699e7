"""The benchmark peer: the legacy ``databricks-cli`` 0.18.0 in its own virtual environment.

:func:`install` creates ``.bench/legacy-venv`` (gitignored) and installs the pinned CLI from
PyPI once; :class:`LegacyCli` runs its commands against the local workspace.

The legacy CLI builds its base URL from the host's scheme and *hostname* only (any port is
dropped) and retries only over https, so it can reach a local workspace only on the default
port of its scheme: the harness serves the workspace on ``127.0.0.1:80`` over plain http (see
docs/benchmarks.md for the https/443 alternative). No 429/503 is injected in these benchmarks,
so the missing retries over http change nothing here.
"""

from __future__ import annotations

import os
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

from bench.paths import REPO

__all__ = ["VERSION", "LegacyCli", "LegacyUnavailable", "install"]

VERSION = "0.18.0"
VENV = REPO / ".bench" / "legacy-venv"


class LegacyUnavailable(Exception):
    """The legacy CLI could not be installed or cannot reach the workspace."""


def install(target: Path = VENV) -> Path:
    """The ``databricks`` executable of databricks-cli 0.18.0, installed on first use."""
    exe = target / "bin" / "databricks"
    if exe.exists():
        done = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
        if done.returncode == 0 and VERSION in done.stdout:
            return exe
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(target)
        subprocess.run(
            [
                str(target / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"databricks-cli=={VERSION}",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise LegacyUnavailable(f"installing databricks-cli {VERSION} failed: {detail}") from exc
    return exe


@dataclass(frozen=True)
class LegacyCli:
    exe: Path
    host: str  # http://127.0.0.1 (port 80: the CLI drops any other port)
    token: str
    config_file: Path

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABRICKS_", "ARM_", "AZURE_"))
        }
        env.update(
            DATABRICKS_HOST=self.host,
            DATABRICKS_TOKEN=self.token,
            DATABRICKS_CONFIG_FILE=str(self.config_file),
        )
        return env

    def argv(self, *args: str) -> list[str]:
        return [str(self.exe), *args]

    def run(self, *args: str) -> str:
        """Run one command to the end; its stdout. Failures raise with the CLI's stderr."""
        done = subprocess.run(self.argv(*args), env=self.env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"databricks {' '.join(args)} failed ({done.returncode}): "
                f"{done.stderr.strip()[-800:]}"
            )
        return done.stdout
