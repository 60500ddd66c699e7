"""The base of the configuration models: frozen, strict, and relative paths resolved against the
repo root given as validation context (``model_validate(data, context={"root": Path(...)})``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo

__all__: list[str] = []


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, validate_default=True
    )


def _resolve(path: Path, info: ValidationInfo) -> Path:
    root = (info.context or {}).get("root")
    path = path.expanduser()
    if isinstance(root, Path) and not path.is_absolute():
        return root / path
    return path
