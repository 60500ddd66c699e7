"""A snapshot of databricks-sdk's ``JobSettings`` type structure, shipped as package data.

Checking a job template against the SDK's dataclasses needs ``databricks.sdk.service.jobs``,
whose import runs ``databricks/sdk/__init__.py`` and loads every service module (~0.8 s): most
of ``orchestrator plan``'s start-up. The structure those checks need (fields in declared
order, which are required, their types, enum values) is small, so it is walked once from the
installed SDK and stored in ``job_settings_schema.json`` beside this module; the template checks
read that instead. A test regenerates it from the installed SDK and compares, so an SDK upgrade
that changes the job settings forces a refresh::

    python -m orchestrator.job_schema --write    # regenerate from the installed SDK
    python -m orchestrator.job_schema --check    # exit 1 when the snapshot is stale

The format (``version`` 1): ``root`` names the top type; ``types`` maps a qualified type name
(``jobs.JobSettings``) to ``{"fields": {name: TYPE}, "required": [name, ...]}`` for a dataclass
or ``{"enum": [value, ...]}`` for an enum. A field may be null exactly when it is not required
(``Optional[...]`` with a default in the SDK; the generator checks that this holds). A TYPE is
``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"any"``, a qualified type name,
``{"list": TYPE}`` or ``{"map": TYPE}`` (JSON object keys are strings). ``Optional[X]`` is
``X``; a union of several is its first member, as the template checks always read it.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import functools
import json
import sys
import typing
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeAlias

__all__ = [
    "SCHEMA_FILE",
    "TypeExpr",
    "dumps",
    "generate",
    "load_schema",
    "main",
    "schema_path",
]

SCHEMA_FILE = "job_settings_schema.json"
FORMAT_VERSION = 1

TypeExpr: TypeAlias = str | dict[str, "TypeExpr"]

_PRIMITIVES: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool"}


def schema_path() -> Path:
    """Where the shipped snapshot lives in the source tree (for ``--write``)."""
    return Path(__file__).with_name(SCHEMA_FILE)


@functools.cache
def load_schema() -> dict[str, Any]:
    """The shipped snapshot (read once per process)."""
    text = resources.files("orchestrator").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    if schema.get("version") != FORMAT_VERSION:
        raise RuntimeError(f"{SCHEMA_FILE}: unsupported format version {schema.get('version')}")
    return schema


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

    root = expr(JobSettings)
    return {
        "version": FORMAT_VERSION,
        "root": root,
        "types": dict(sorted(types.items())),
    }


def dumps(schema: dict[str, Any]) -> str:
    """Stable text: one type per line, so a refresh shows as a readable diff."""
    lines = [
        "{",
        f'"version":{json.dumps(schema["version"])},',
        f'"root":{json.dumps(schema["root"])},',
        '"types":{',
    ]
    items = list(schema["types"].items())
    for i, (name, spec) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        body = json.dumps(spec, separators=(",", ":"), ensure_ascii=False)
        lines.append(f"{json.dumps(name)}:{body}{comma}")
    lines += ["}", "}"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.job_schema",
        description="Regenerate or check the JobSettings snapshot from the installed SDK.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help=f"write {SCHEMA_FILE}")
    group.add_argument("--check", action="store_true", help="exit 1 when it is out of date")
    args = parser.parse_args(argv)
    text = dumps(generate())
    path = schema_path()
    if args.write:
        path.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {path}\n")
        return 0
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if current != text:
        sys.stderr.write(f"{path} is out of date: run python -m orchestrator.job_schema --write\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
