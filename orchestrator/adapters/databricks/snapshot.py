"""Walking databricks-sdk's ``JobSettings`` dataclasses into the job-settings snapshot format
that :mod:`orchestrator.job.settings_snapshot` ships and reads (see its docstring for the format).

This is the only part of the snapshot that imports the SDK, so it lives with the adapter; it
runs when the snapshot is written or checked, never in ``plan`` or ``build``.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any, TypeAlias

__all__ = ["FORMAT_VERSION", "TypeExpr", "generate"]

FORMAT_VERSION = 1

TypeExpr: TypeAlias = str | dict[str, "TypeExpr"]

_PRIMITIVES: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool"}


def _type_name(cls: type) -> str:
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__qualname__}"


def _is_optional(hint: Any) -> bool:
    return typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)


def generate() -> dict[str, Any]:
    """Walk the installed SDK's ``JobSettings`` (``typing.get_type_hints`` and
    ``dataclasses.fields``) into the snapshot format."""
    from databricks.sdk.service.jobs import JobSettings

    types: dict[str, dict[str, Any]] = {}

    def expr(hint: Any) -> TypeExpr:
        origin = typing.get_origin(hint)
        if origin is typing.Union:
            options = [a for a in typing.get_args(hint) if a is not type(None)]
            return expr(options[0]) if options else "any"
        if hint is Any:
            return "any"
        if origin is list:
            return {"list": expr(typing.get_args(hint)[0])}
        if origin is dict:
            return {"map": expr(typing.get_args(hint)[1])}
        if hint in _PRIMITIVES:
            return _PRIMITIVES[hint]
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            name = _type_name(hint)
            types.setdefault(name, {"enum": [str(m.value) for m in hint]})
            return name
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            name = _type_name(hint)
            if name not in types:
                spec: dict[str, Any] = {"fields": {}, "required": []}
                types[name] = spec  # before recursing: types may refer to themselves
                hints = typing.get_type_hints(hint)
                for field in dataclasses.fields(hint):
                    field_hint = hints[field.name]
                    spec["fields"][field.name] = expr(field_hint)
                    required = (
                        field.default is dataclasses.MISSING
                        and field.default_factory is dataclasses.MISSING
                    )
                    if required:
                        spec["required"].append(field.name)
                    if required == _is_optional(field_hint):
                        raise RuntimeError(
                            f"{name}.{field.name}: the snapshot format assumes a field is "
                            "Optional exactly when it has a default; extend the format"
                        )
            return name
        return "any"  # anything else is not checked, as before the snapshot

    from databricks.sdk.version import __version__ as sdk_version

    root = expr(JobSettings)
    return {
        "version": FORMAT_VERSION,
        "sdk_version": sdk_version,
        "root": root,
        "types": dict(sorted(types.items())),
    }
