"""Loading the build configuration: ``orchestrator.yml`` + environment + flags -> BuildConfig.

This module owns *where settings come from* and how problems are reported; what a valid
setting is lives in :mod:`orchestrator.config.schema`.

The file::

    version: 1
    defaults: {...settings...}          # shared by every target
    targets:
      local: {...settings...}           # deep-merged over defaults
      dev: {...}
      prod: {...}
    x-anything: ...                     # ignored; a place for YAML anchors

Precedence, highest first: CLI flags (``overrides``, dotted names such as ``cluster_id`` or
``timeouts.build``) > environment (:data:`ENV_VARS`, empty values ignored) > the target's section >
``defaults`` > built-in defaults. ``local`` is an implicit target (defaults only) when the file
does not define it. String values in ``defaults`` and in the selected target may read the
environment: ``${VAR}`` (an error when unset), ``${VAR:-fallback}`` (when unset or empty), and
``$${`` for a literal ``${``. Secrets are only references, ``{env: NAME}`` or
``{keyvault: secret-name}``; a literal value under a secret-like name (token, key, password,
secret, sas, connection_string...) is an error anywhere in the file, in every target.

Every problem is collected and raised at once as one :class:`ConfigError` (a ``UsageError``),
one line each: ``orchestrator.yml:12:16: targets.dev.cluster_id: <message>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from orchestrator.config._document import CONFIG_FILE_NAME, ConfigError, Loader, Problem
from orchestrator.config.schema import ENV_VARS, BuildConfig, SecretRef
from orchestrator.errors import OrchestratorError, UsageError

__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_TARGET",
    "ENV_CONFIG",
    "ENV_TARGET",
    "ENV_VARS",
    "BuildConfig",
    "ConfigError",
    "Problem",
    "find_config",
    "load_config",
    "resolve_secret",
    "resolve_target",
]

DEFAULT_TARGET = "local"
ENV_CONFIG = "ORCHESTRATOR_CONFIG"
ENV_TARGET = "ORCHESTRATOR_TARGET"


def resolve_target(flag: str | None, environ: Mapping[str, str]) -> str:
    """The target name: ``--target`` > ``ORCHESTRATOR_TARGET`` > ``local``."""
    return flag or environ.get(ENV_TARGET) or DEFAULT_TARGET


def resolve_secret(
    ref: SecretRef,
    *,
    field: str,
    environ: Mapping[str, str],
    keyvault: Callable[[str], str] | None = None,
) -> str:
    """The value behind a reference. Errors name the field and the reference, never a value.

    Every value returned is registered for masking (:func:`orchestrator.masking.register_secret`).
    """
    from orchestrator.masking import register_secret

    if ref.source == "env":
        value = environ.get(ref.name)
        if not value:
            raise UsageError(f"{field}: environment variable {ref.name} is not set")
    elif keyvault is None:
        raise UsageError(f"{field}: {ref} needs a Key Vault client (key_vault_url)")
    else:
        try:
            value = keyvault(ref.name)
        except OrchestratorError as exc:
            raise type(exc)(f"{field}: {exc}") from None
    register_secret(value)
    return value


def find_config(path: Path | None, *, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """The configuration file: ``path`` (``--config``), else ``$ORCHESTRATOR_CONFIG``, else
    ``<cwd>/orchestrator.yml`` if it exists, else None (built-in defaults)."""
    if path is None and environ.get(ENV_CONFIG):
        path = Path(environ[ENV_CONFIG])
    if path is None:
        candidate = cwd / CONFIG_FILE_NAME
        path = candidate if candidate.is_file() else None
    return path


def load_config(
    path: Path | None,
    *,
    target: str | None,
    overrides: Mapping[str, str],
    environ: Mapping[str, str],
    root: Path | None = None,
    cwd: Path | None = None,
) -> BuildConfig:
    """Read, merge and validate the configuration for ``target`` (None: see
    :func:`resolve_target`).

    The file is found by :func:`find_config`, looking in ``root`` or else ``cwd`` (default: the
    current directory). ``root`` (the repo root, against which relative paths resolve) defaults
    to the config file's folder, else ``cwd``.
    """
    target = resolve_target(target, environ)
    cwd = cwd or Path.cwd()
    path = find_config(path, environ=environ, cwd=root or cwd)
    if root is None:
        root = path.resolve().parent if path is not None else cwd
    loader = Loader(path=path, root=root, environ=environ)
    data = loader.read(target) if path is not None else loader.implicit(target)
    loader.apply_environment(data)
    loader.apply_overrides(data, overrides)
    data.update(target=target, root=root, config_file=path.resolve() if path else None)
    config = loader.validate(data, root=root)
    if loader.problems or config is None:
        raise ConfigError(loader.problems)
    return config
