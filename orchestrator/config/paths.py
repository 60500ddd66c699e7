"""The configuration of what a build takes from the repo: its paths (``paths``), what of the
notebooks folder is deployed (``deploy``) and whether test tasks must write JUnit (``junit``).

Nothing here assumes a repo layout: only ``paths.notebooks`` (default: the repo root) and the
job template are required; models, test data and test scripts are there only when configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationInfo, field_validator

from orchestrator.config._base import _Model, _resolve

__all__ = ["DeployConfig", "JunitConfig", "PathsConfig"]


def _no_empty_path(value: object) -> object:
    """An empty path is a mistake, never "the repo root" (write ``.`` for that)."""
    items = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(item, str) and not item.strip() for item in items):
        raise ValueError("must not be empty (leave the field out for none; '.' is the repo root)")
    return value


class PathsConfig(_Model):
    """Repo paths (relative ones are resolved against the repo root).

    ``notebooks`` is deployed to the workspace except for ``test_data`` and ``test_scripts``
    inside it: those go to storage with ``models`` (see :attr:`storage_only`). ``models``,
    ``test_data`` and ``test_scripts`` are optional: none unless configured.
    """

    notebooks: Path = Path()
    models: Path | None = None
    test_data: Path | None = None
    test_scripts: tuple[Path, ...] = ()
    job_template: Path = Path("job-template.json")
    results: Path = Path("test-results")
    artifacts: Path = Path("artifacts")

    @field_validator("*", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        return _no_empty_path(value)

    @field_validator("*")
    @classmethod
    def _resolve_all(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if isinstance(value, tuple):
            return tuple(_resolve(p, info) for p in value)
        return _resolve(value, info)

    @property
    def storage_only(self) -> tuple[Path, ...]:
        data = () if self.test_data is None else (self.test_data,)
        return (*data, *self.test_scripts)


#: ``GitProvider`` of the Jobs and Repos APIs (databricks-sdk's enum values)
GIT_PROVIDERS = (
    "gitHub",
    "gitHubEnterprise",
    "bitbucketCloud",
    "bitbucketServer",
    "azureDevOpsServices",
    "gitLab",
    "gitLabEnterpriseEdition",
    "awsCodeCommit",
)


class DeployConfig(_Model):
    """How the build's notebooks reach the workspace, and what of ``paths.notebooks`` is
    deployed.

    ``mode``: ``workspace`` (a per-build folder of workspace files, the repo root not on
    ``sys.path``), ``git-folder`` (a per-build Git folder at the build's commit, through the
    Repos API) or ``git`` (no upload: the tasks run ``source: GIT`` at the build's commit).
    ``git_url``/``git_provider`` name the repository for the Git modes (default: from the CI,
    else ``origin``). ``include``/``exclude`` are gitignore-style patterns relative to that
    folder (empty ``include``: everything); ``gitignore`` honours the repo's ``.gitignore``
    files. The orchestrator's own outputs are never deployed."""

    mode: Literal["workspace", "git-folder", "git"] = "workspace"
    git_url: str | None = None
    git_provider: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    gitignore: bool = True

    @field_validator("git_url", "git_provider", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("git_provider")
    @classmethod
    def _provider(cls, value: str | None) -> str | None:
        if value is not None and value not in GIT_PROVIDERS:
            raise ValueError(f"expected one of {', '.join(GIT_PROVIDERS)}")
        return value

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _patterns(cls, value: Any) -> Any:
        return _no_empty_path(value)


class JunitConfig(_Model):
    """Whether a test task must write JUnit XML. By default a task that ends SUCCESS without it
    is one passing test case; ``required`` (every task) or ``required_tasks`` (by task key)
    restores the strict rule: no XML is a failure."""

    required: bool = False
    required_tasks: tuple[str, ...] = ()

    def is_required(self, task_key: str) -> bool:
        return self.required or task_key in self.required_tasks
