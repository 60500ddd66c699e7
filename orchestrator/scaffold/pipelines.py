"""CI pipelines for a scaffolded repo, adapted from the orchestrator's own ``devops/`` files:
the build and the daily cleanup, for Azure Pipelines or GitHub Actions. The adaptation: path
filters for the whole repo (its notebooks are the repo), and the orchestrator installed as a
package rather than from the checkout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from orchestrator import __version__
from orchestrator.errors import UsageError

__all__ = ["PIPELINES", "Pipeline", "pipeline_files"]

Pipeline = Literal["azure", "github"]
PIPELINES: tuple[Pipeline, ...] = ("azure", "github")

#: where the templates are (in the orchestrator's source tree) -> where they go in the repo
_FILES: dict[Pipeline, tuple[tuple[str, str], ...]] = {
    "azure": (
        ("azure-pipelines-ci.yml", "devops/azure-pipelines-ci.yml"),
        ("azure-pipelines-cleanup.yml", "devops/azure-pipelines-cleanup.yml"),
    ),
    "github": (
        ("github/ci.yml", ".github/workflows/notebooks-ci.yml"),
        ("github/cleanup.yml", ".github/workflows/notebooks-cleanup.yml"),
    ),
}
_INSTALL = "'.[azure]'"
_PACKAGE = f'"orchestrator[azure] @ git+https://<host>/<org>/orchestrator@v{__version__}"'
_PROJECT_PATH = re.compile(r"^(\s*)- (databricks|models)/\*\*\n", re.MULTILINE)


def _templates() -> Path:
    """The templates a wheel carries (setup.py copies them in), else the checkout's."""
    packaged = Path(__file__).resolve().parent / "pipeline_templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "devops"


def _adapt(text: str, pipeline: Pipeline) -> str:
    everything = '"**"' if pipeline == "github" else "/"  # Azure: a prefix, the whole repo

    def replace(match: re.Match[str]) -> str:
        if match.group(2) == "models":
            return ""
        return f"{match.group(1)}- {everything}\n"

    text = _PROJECT_PATH.sub(replace, text)
    text = text.replace("devops/github/ci.yml", ".github/workflows/notebooks-ci.yml")
    return text.replace(_INSTALL, f"{_PACKAGE}  # your orchestrator release")


def pipeline_files(pipeline: Pipeline) -> dict[str, str]:
    """The pipeline files for the repo: its relative path -> text."""
    folder = _templates()
    files: dict[str, str] = {}
    for source, target in _FILES[pipeline]:
        path = folder / source
        if not path.is_file():
            raise UsageError(
                f"--pipelines {pipeline}: the pipeline templates ({path}) are not in this "
                "installation; copy them from the orchestrator's devops/ folder"
            )
        files[target] = _adapt(path.read_text(encoding="utf-8"), pipeline)
    return files
