"""The configuration of what a build takes from the repo: its paths (``paths``), what of the
notebooks folder is deployed (``deploy``) and whether test tasks must write JUnit (``junit``).

Nothing here assumes a repo layout: only ``paths.notebooks`` (default: the repo root) and the
job template are required; models, test data and test scripts are there only when configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


class DeployConfig(_Model):
    """What of ``paths.notebooks`` is deployed: ``include``/``exclude`` are gitignore-style
    patterns relative to that folder (empty ``include``: everything); ``gitignore`` honours
    the repo's ``.gitignore`` files. The orchestrator's own outputs are never deployed."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    gitignore: bool = True

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
