"""The typed, validated shape of the build configuration (pydantic v2 models, all frozen).

This module owns *what a valid configuration is*: field names, types, defaults, per-field rules
(URLs, workspace paths, durations, bounds) and the two secret rules (a secret is only ever a
:class:`SecretRef`, and which field names count as secret). Reading ``orchestrator.yml``,
environment variables and flags into these models is :mod:`orchestrator.config.loader`'s job.

Relative paths are resolved against the repo root passed as validation context
(``model_validate(data, context={"root": Path(...)})``).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestrator.abfss import is_abfss, split_abfss
from orchestrator.config._base import _Model, _resolve
from orchestrator.config.paths import DeployConfig, JunitConfig, PathsConfig
from orchestrator.config.registry_config import ModelsConfig, RegisterConfig

__all__ = [
    "DEFAULT_BUILD_ROOT",
    "DEFAULT_DEPLOY_CONCURRENCY",
    "DEFAULT_STORAGE_ROOT",
    "ENV_VARS",
    "LOADER_FIELDS",
    "BuildConfig",
    "ConcurrencyConfig",
    "DeployConfig",
    "JunitConfig",
    "ModelsConfig",
    "PathsConfig",
    "RegisterConfig",
    "SecretRef",
    "StorageConfig",
    "TimeoutsConfig",
    "WorkspaceConfig",
    "is_secret_name",
    "parse_duration",
    "parse_secret_flag",
    "section_model",
    "settable_fields",
]

DEFAULT_BUILD_ROOT = "~/orchestrator-builds"
DEFAULT_STORAGE_ROOT = ".orchestrator/storage"
DEFAULT_DEPLOY_CONCURRENCY = 16

#: The environment variables that override the file (flags override them), by field.
ENV_VARS: Mapping[str, str] = {
    "ORCHESTRATOR_HOST": "workspace.host",
    "ORCHESTRATOR_PROFILE": "workspace.profile",
    "ORCHESTRATOR_AUTH_TYPE": "workspace.auth_type",
    "ORCHESTRATOR_CLUSTER_ID": "cluster_id",
    "ORCHESTRATOR_BUILD_ROOT": "build_root",
    "ORCHESTRATOR_STORAGE_ROOT": "storage.root",
    "ORCHESTRATOR_STORAGE_CLUSTER_PATH": "storage.cluster_path",
    "ORCHESTRATOR_KEY_VAULT_URL": "key_vault_url",
    "ORCHESTRATOR_BUILD_TIMEOUT": "timeouts.build",
    "ORCHESTRATOR_CLUSTER_START_TIMEOUT": "timeouts.cluster_start",
    "ORCHESTRATOR_POLL_INTERVAL": "timeouts.poll",
    "ORCHESTRATOR_CONNECT_TIMEOUT": "timeouts.connect",
    "ORCHESTRATOR_DEPLOY_CONCURRENCY": "concurrency.deploy",
    "ORCHESTRATOR_DEPLOY_MODE": "deploy.mode",
    "ORCHESTRATOR_KEEP": "keep",
}

#: Fields of BuildConfig set by the loader, never by the file or a flag.
LOADER_FIELDS = frozenset({"target", "root", "config_file"})

_SECRET_WORDS = frozenset({"token", "key", "apikey", "pat", "password", "passwd", "pwd"}) | {
    "secret",
    "sas",
    "credential",
    "credentials",
}
_NOT_SECRET_LAST = frozenset({"url", "uri", "id", "name", "path", "type", "scope", "env", "vault"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYVAULT_NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_AUTH_TYPE = re.compile(r"[a-z0-9][a-z0-9-]*")
_SECTIONS = (
    "workspace",
    "storage",
    "paths",
    "deploy",
    "junit",
    "timeouts",
    "concurrency",
    "local",
    "models",
)


def is_secret_name(name: str) -> bool:
    """True for field names that hold secrets (``token``, ``account_key``, ``client_secret``,
    ``connection_string``, ``sas_token``...), false for ``key_vault_url``, ``client_id``...
    """
    parts = [p for p in re.split(r"[_\-.\s]+", name.lower()) if p]
    if not parts or parts[-1] in _NOT_SECRET_LAST:
        return False
    if "connection" in parts and "string" in parts:
        return True
    return any(p in _SECRET_WORDS or p.endswith(("password", "secret", "token")) for p in parts)


def parse_duration(value: object) -> object:
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"30m"``, ``"1h30m"``; other types unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError("expected seconds or a duration like '90s', '30m', '1h30m'")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


def _blank_to_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]


class SecretRef(_Model):
    """Where a secret comes from: ``{env: NAME}`` or ``{keyvault: secret-name}``, never a value."""

    env: str | None = None
    keyvault: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.keyvault is None):
            raise ValueError("a secret reference is either {env: NAME} or {keyvault: secret-name}")
        if self.env is not None and not _ENV_NAME.fullmatch(self.env):
            raise ValueError("env: expects an environment variable name")
        if self.keyvault is not None and not _KEYVAULT_NAME.fullmatch(self.keyvault):
            raise ValueError("keyvault: expects a Key Vault secret name (letters, digits, '-')")
        return self

    @property
    def source(self) -> Literal["env", "keyvault"]:
        return "env" if self.env is not None else "keyvault"

    @property
    def name(self) -> str:
        return self.env if self.env is not None else str(self.keyvault)

    def __str__(self) -> str:
        return f"{self.source}:{self.name}"

    def __repr__(self) -> str:
        return f"SecretRef({self})"


class WorkspaceConfig(_Model):
    """The Databricks workspace. No ``host`` means the embedded local workspace.

    Authentication goes through databricks-sdk's unified auth; these are only hints for it
    (``profile``, ``auth_type``, ids) and references to secrets it needs.
    """

    host: OptionalText = None
    profile: OptionalText = None
    auth_type: OptionalText = None
    client_id: OptionalText = None
    tenant_id: OptionalText = None
    token: SecretRef | None = None
    client_secret: SecretRef | None = None

    @property
    def is_local(self) -> bool:
        return self.host is None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ValueError("expected an https:// URL (leave empty for the local workspace)")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise ValueError("plain http is only allowed for a loopback host; use https://")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError("expected the workspace URL without a path")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("auth_type")
    @classmethod
    def _auth_type(cls, value: str | None) -> str | None:
        if value is not None and not _AUTH_TYPE.fullmatch(value):
            raise ValueError("expected a databricks-sdk auth type such as 'pat' or 'azure-cli'")
        return value


class LocalConfig(_Model):
    """What only the local workspace gets. ``dbfs`` maps DBFS paths to repo folders
    (``/src: infra/files``): what a team's infrastructure puts in DBFS on a real workspace
    (Terraform, a pipeline step) is copied there at build start, so notebooks that read
    ``/dbfs/src/...`` or ``dbfs:/src/...`` run unchanged. A real workspace is never written."""

    dbfs: dict[str, Path] = {}

    @field_validator("dbfs", mode="before")
    @classmethod
    def _dbfs(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, folder in value.items():
            path = str(key).strip()
            if path.startswith("dbfs:"):
                path = path[len("dbfs:") :]
            if not path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"{key!r}: a DBFS path, such as /src or dbfs:/src")
            out[path.rstrip("/") or "/"] = folder
        return out

    @field_validator("dbfs")
    @classmethod
    def _folders(cls, value: dict[str, Path], info: ValidationInfo) -> dict[str, Path]:
        return {key: _resolve(folder, info) for key, folder in value.items()}


class StorageConfig(_Model):
    """Where models, test scripts, test data and results go: a local folder or ``abfss://``.

    ``cluster_path`` is the same root as the cluster sees it (``/dbfs/mnt/...``, a
    ``/Volumes/...`` path, the ``abfss://`` URL...); it defaults to ``root``.
    """

    root: str = DEFAULT_STORAGE_ROOT
    cluster_path: OptionalText = None
    account_key: SecretRef | None = None
    sas_token: SecretRef | None = None
    connection_string: SecretRef | None = None

    @field_validator("root")
    @classmethod
    def _root(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            raise ValueError("must not be empty")
        if is_abfss(value):
            if split_abfss(value) is None:
                raise ValueError(
                    "expected abfss://<container>@<account>.dfs.core.windows.net/<prefix>"
                )
            return value.rstrip("/")
        if _URL_SCHEME.match(value):
            raise ValueError("unsupported URL scheme; use a local folder or abfss://")
        return str(_resolve(Path(value), info))

    @property
    def is_remote(self) -> bool:
        return is_abfss(self.root)

    @property
    def local_root(self) -> Path | None:
        return None if self.is_remote else Path(self.root)

    @property
    def cluster_root(self) -> str:
        return self.cluster_path or self.root


class TimeoutsConfig(_Model):
    """Seconds (or ``"90s"``, ``"30m"``, ``"1h"``). ``poll`` is the longest wait between polls.

    ``connect``: how long requests to a workspace that has not answered yet are retried
    (connection refused, timeouts, 429, 503) before the build gives up (exit 3); once it has
    answered, a request is retried for up to ``max(connect, 300)`` s. ``cancel_grace``: after
    SIGINT/SIGTERM, how long the cancel and cleanup may take before the process exits anyway.
    """

    build: Seconds = 3600.0
    cluster_start: Seconds = 1200.0
    poll: Seconds = 1.5
    connect: Seconds = 60.0
    cancel_grace: Seconds = 300.0


class ConcurrencyConfig(_Model):
    deploy: int = Field(default=DEFAULT_DEPLOY_CONCURRENCY, ge=1, le=256)


class BuildConfig(_Model):
    """The resolved configuration of one build for one target.

    ``target``, ``root`` (the repo root) and ``config_file`` are set by the loader, not the file.
    Sections left out take their defaults, validated with the same context (so default paths
    are resolved against ``root`` too).
    """

    @model_validator(mode="before")
    @classmethod
    def _every_section(cls, data: Any) -> Any:
        """Validate left-out sections from ``{}``, so defaults see the context too."""
        if isinstance(data, dict):
            return {**{key: {} for key in _SECTIONS}, **data}
        return data

    target: str
    root: Path
    config_file: Path | None = None
    workspace: WorkspaceConfig = WorkspaceConfig()
    cluster_id: OptionalText = None
    build_root: str = DEFAULT_BUILD_ROOT
    storage: StorageConfig = StorageConfig()
    paths: PathsConfig = PathsConfig()
    deploy: DeployConfig = DeployConfig()
    junit: JunitConfig = JunitConfig()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    concurrency: ConcurrencyConfig = ConcurrencyConfig()
    keep: bool = False
    key_vault_url: OptionalText = None
    local: LocalConfig = LocalConfig()
    models: ModelsConfig = ModelsConfig()

    @field_validator("cluster_id")
    @classmethod
    def _cluster_id(cls, value: str | None) -> str | None:
        if value is not None and any(c.isspace() for c in value):
            raise ValueError("a cluster id has no spaces")
        return value

    @field_validator("build_root")
    @classmethod
    def _build_root(cls, value: str) -> str:
        home = value == "~" or value.startswith("~/")
        if not (value.startswith("/") or home) or value.startswith("//"):
            raise ValueError(
                "expected an absolute workspace path such as /Users/me/builds, or one under "
                "the build identity's home such as ~/orchestrator-builds"
            )
        if any(part in {".", ".."} for part in value.split("/")) or "//" in value.rstrip("/"):
            raise ValueError("expected a normalized workspace path (no '.', '..' or '//')")
        if PurePosixPath(value) == PurePosixPath("/"):
            raise ValueError("must not be the workspace root")
        return value.rstrip("/") or value

    @field_validator("key_vault_url")
    @classmethod
    def _key_vault_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("expected https://<vault-name>.vault.azure.net")
        return f"https://{parts.netloc}"

    def secret_refs(self) -> dict[str, SecretRef]:
        """Every secret reference set, by dotted field name (for resolution and checks)."""
        found: dict[str, SecretRef] = {}
        for section in ("workspace", "storage"):
            model = getattr(self, section)
            for name in type(model).model_fields:
                value = getattr(model, name)
                if isinstance(value, SecretRef):
                    found[f"{section}.{name}"] = value
        return found

    def cross_field_problems(self) -> list[tuple[tuple[str, ...], str]]:
        """Rules that span fields, as ``(location, message)``; empty when consistent."""
        problems: list[tuple[tuple[str, ...], str]] = []
        if not self.workspace.is_local and self.cluster_id is None:
            problems.append((("cluster_id",), "required when workspace.host is set"))
        if self.key_vault_url is None:
            for field, ref in self.secret_refs().items():
                if ref.source == "keyvault":
                    problems.append(
                        (tuple(field.split(".")), "a keyvault: reference needs key_vault_url")
                    )
        if self.timeouts.poll > self.timeouts.build:
            problems.append((("timeouts", "poll"), "must not be longer than timeouts.build"))
        problems += self._register_problems()
        return problems

    def _register_problems(self) -> list[tuple[tuple[str, ...], str]]:
        """``source: file`` registers a file of the models folder, which must be there."""
        register = self.models.register_
        if register is None or register.path is None:
            return []
        where = ("models", "register", "path")
        models = self.paths.models
        if models is None:
            return [(where, "source: file needs paths.models (the file is one of its files)")]
        if not register.path.resolve().is_relative_to(models.resolve()):
            return [(where, f"must be a file inside paths.models ({models})")]
        if not register.path.is_file():
            return [(where, f"no such file: {register.path}")]
        return []


# -- introspection for the loader -------------------------------------------------------------


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The model class behind a field annotation (``X`` or ``X | None``), if any."""
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def settable_fields(model: type[BaseModel] = BuildConfig, prefix: str = "") -> dict[str, str]:
    """Dotted names a flag can set -> ``value``, ``list`` or ``secret``."""
    leaves: dict[str, str] = {}
    for name, info in model.model_fields.items():
        if not prefix and name in LOADER_FIELDS:
            continue
        child = section_model(info.annotation)
        dotted = f"{prefix}{info.alias or name}"
        if child is SecretRef:
            leaves[dotted] = "secret"
        elif child is not None:
            leaves.update(settable_fields(child, f"{dotted}."))
        else:
            leaves[dotted] = "list" if typing.get_origin(info.annotation) is tuple else "value"
    return leaves


def parse_secret_flag(raw: str) -> dict[str, str] | None:
    """``env:NAME`` / ``keyvault:NAME`` (a flag's form of a reference) -> reference data."""
    source, _, name = raw.partition(":")
    return {source: name} if source in {"env", "keyvault"} and name else None
