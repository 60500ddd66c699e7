"""The configuration of the ``models`` section: registering a tested model with MLflow
(``models.register``) and deleting old builds' MLflow runs (``models.cleanup_runs``).

Registering is optional: with no ``models.register`` a build never touches MLflow (and the
local workspace never starts its tracking server). The rules here are the ones a registry
would refuse later, checked before anything runs: Unity Catalog's three-level names, MLflow's
alias names, a model file for ``source: file``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from orchestrator.config._base import _Model, _resolve

__all__ = ["DEFAULT_BRANCHES", "ModelsConfig", "RegisterConfig"]

#: the branches whose passed builds register, unless configured: the repo's main branch
DEFAULT_BRANCHES = ("main",)

#: one part of a Unity Catalog name (catalog, schema or model), as the local workspace checks it
_UC_PART = re.compile(r"[A-Za-z0-9_-]{1,255}")
#: MLflow's alias rule (``mlflow/utils/validation.py``: ``_validate_model_alias_name``): word
#: characters and dashes, at most 255, and neither ``latest`` nor ``v<digits>`` (version names)
_ALIAS = re.compile(r"[\w-]{1,255}")
_VERSION_LIKE = re.compile(r"v\d+", re.IGNORECASE)
_BRANCH = re.compile(r"[^\s~^:?\[\\]+")


class RegisterConfig(_Model):
    """``models.register``: what a passed build of one of ``branches`` registers, and where.

    ``source: job`` registers the models the build's run logged (MLflow runs tagged with one
    of its task runs, ``mlflow.databricks.jobRunID``); ``source: file`` logs the file at
    ``path`` (inside ``paths.models``) as an MLflow model of a run of its own and registers
    that. ``experiment`` is where that run goes (default: the repo's orchestrator folder,
    ``<build_root>/<repo>/_orchestrator/models``), and where ``source: job`` looks for the runs
    (default: every experiment the build's identity can see).
    """

    name: str
    source: Literal["job", "file"] = "job"
    path: Path | None = None
    branches: tuple[str, ...] = DEFAULT_BRANCHES
    alias: str | None = None
    registry: Literal["workspace", "unity-catalog"] = "workspace"
    experiment: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @field_validator("branches")
    @classmethod
    def _branches(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one branch (a name, or a pattern such as release/*)")
        for branch in value:
            if not _BRANCH.fullmatch(branch):
                raise ValueError(f"{branch!r} is not a branch name or pattern")
        return value

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if (
            not _ALIAS.fullmatch(value)
            or value.lower() == "latest"
            or _VERSION_LIKE.fullmatch(value)
        ):
            raise ValueError(
                "an alias is letters, digits, '_' and '-' (not 'latest', nor v<number>)"
            )
        return value

    @field_validator("experiment")
    @classmethod
    def _experiment(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not value.startswith("/") or "//" in value or value.rstrip("/") == "":
            raise ValueError("expected an absolute workspace path such as /Shared/models")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> RegisterConfig:
        if self.registry == "unity-catalog":
            parts = self.name.split(".")
            if len(parts) != 3 or not all(_UC_PART.fullmatch(p) for p in parts):
                raise ValueError(
                    f"name {self.name!r}: Unity Catalog needs <catalog>.<schema>.<model> "
                    "(letters, digits, '_', '-')"
                )
        elif not self.name or "/" in self.name or len(self.name) > 256:
            raise ValueError(f"name {self.name!r}: a model name without '/', at most 256 long")
        if self.source == "file" and self.path is None:
            raise ValueError("source: file needs path (the model file in the models folder)")
        if self.source == "job" and self.path is not None:
            raise ValueError("path is for source: file only (source: job registers logged models)")
        return self


class ModelsConfig(_Model):
    """``models``: ``register`` (none by default) and ``cleanup_runs``: whether
    ``orchestrator cleanup`` deletes the MLflow runs of the builds it deletes (off by default;
    registered model versions are never deleted)."""

    # ``register`` is a name pydantic's BaseModel has (ABC registration): the field is
    # ``register_``, read and written as ``register``
    register_: RegisterConfig | None = Field(default=None, alias="register")
    cleanup_runs: bool = False
