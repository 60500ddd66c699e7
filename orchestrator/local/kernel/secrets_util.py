"""``dbutils.secrets`` of the in-kernel shim, and the redaction of secret values.

This module owns :class:`SecretsUtil` (values from ``ORCH_SECRETS``, {scope: {key: value}})
and :class:`_Redactor`: values read in the kernel (of four characters or more) are replaced
with ``[REDACTED]`` in ``sys.stdout``/``sys.stderr``, and their ``repr`` is redacted.

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from .common import (
    _WRAPPED_MARK,
    SecretNotFound,
    _mark,
    _print_help,
)

__all__ = ["SecretMetadata", "SecretScope", "SecretsUtil"]

_MIN_REDACTED_LENGTH = 4


class SecretMetadata(NamedTuple):
    """One entry of ``dbutils.secrets.list``."""

    key: str


class SecretScope(NamedTuple):
    """One entry of ``dbutils.secrets.listScopes``."""

    name: str

    def getName(self) -> str:
        return self.name


class _SecretStr(str):
    """A secret value: an ordinary ``str`` whose ``repr`` is redacted, as in Databricks."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'[REDACTED]'"


class _Redactor:
    """Replaces secret values read in this kernel with ``[REDACTED]`` in stdout and stderr.

    For ipykernel's streams the text is redacted where the stream hands its buffered text to
    the message sender (``OutStream._flush_buffers``): that also covers output of
    subprocesses the kernel forwards, and it survives IPython swapping the streams' ``write``
    around every cell. Other streams get a redacting ``write`` where they allow it.
    """

    def __init__(self) -> None:
        self._values: list[str] = []
        self._patched: set[int] = set()

    def add(self, value: str) -> None:
        if len(value) >= _MIN_REDACTED_LENGTH and value not in self._values:
            self._values.append(value)
            self._values.sort(key=len, reverse=True)  # longest first: overlapping secrets
        for stream in (sys.stdout, sys.stderr):
            self._patch(stream)

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, "[REDACTED]")
        return text

    def _patch(self, stream: Any) -> None:
        if stream is None or id(stream) in self._patched:
            return
        cls = type(stream)
        flush_buffers = getattr(cls, "_flush_buffers", None)
        if cls.__module__.startswith("ipykernel.") and callable(flush_buffers):
            if not getattr(flush_buffers, _WRAPPED_MARK, False):

                def redacting_flush_buffers(self: Any) -> Iterator[tuple[Any, Any]]:
                    for parent, data in flush_buffers(self):
                        yield parent, _REDACTOR.redact(data) if isinstance(data, str) else data

                cls._flush_buffers = _mark(redacting_flush_buffers, flush_buffers)
            self._patched.add(id(stream))
            return
        instance_write = stream.write

        def write(text: Any, *args: Any) -> Any:
            if isinstance(text, str):
                text = _REDACTOR.redact(text)
            return instance_write(text, *args)

        try:
            stream.write = write
        except (AttributeError, TypeError):
            return  # a stream that refuses attributes keeps printing unredacted
        self._patched.add(id(stream))


_REDACTOR = _Redactor()


class SecretsUtil:
    """``dbutils.secrets`` backed by ``ORCH_SECRETS`` ({scope: {key: value}})."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        self._secrets = secrets

    def get(self, scope: str, key: str) -> str:
        """Gets the string value of a secret; it is redacted from this notebook's output."""
        value = self._secrets.get(scope, {}).get(key)
        if value is None:
            raise SecretNotFound(f"Secret does not exist with scope: {scope} and key: {key}")
        _REDACTOR.add(value)
        return _SecretStr(value)

    def getBytes(self, scope: str, key: str) -> bytes:
        """Gets the bytes of a secret (its UTF-8 encoding)."""
        return str.__str__(self.get(scope, key)).encode("utf-8")

    def list(self, scope: str) -> list[SecretMetadata]:
        """Lists the keys of a scope."""
        if scope not in self._secrets:
            raise SecretNotFound(f"Scope {scope} does not exist!")
        return [SecretMetadata(key) for key in sorted(self._secrets[scope])]

    def listScopes(self) -> builtins.list[SecretScope]:
        """Lists the secret scopes."""
        return [SecretScope(name) for name in sorted(self._secrets)]

    def help(self, method: str | None = None) -> None:
        """Prints the secrets utility's methods."""
        _print_help(self, "dbutils.secrets", method)

    def __repr__(self) -> str:
        return "<dbutils.secrets (local)>"
