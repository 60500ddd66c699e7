"""Secret values masked wherever the workspace shows what a run produced.

Inside a kernel, ``dbutils.secrets`` redacts what the notebook prints (``kernel/secrets_util``),
as Databricks does. What leaves a run by other ways, ``dbutils.notebook.exit(value)``, an error
message or traceback, a ``display``, is masked here, on the host: when the run's output and
executed notebook are recorded (so the value never reaches the state dir in clear), and again
when ``runs/get-output`` or a page shows them (for runs recorded before a secret was put, or
by an older workspace). Every value of the workspace's secret scopes of at least four
characters (the kernel's rule) is replaced by ``[REDACTED]``, the longest first.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from orchestrator.local.state.store import Store

__all__ = [
    "IMAGE_TYPES",
    "MIN_LENGTH",
    "REDACTED",
    "redact",
    "redact_html",
    "redact_json",
    "secret_values",
]

REDACTED = "[REDACTED]"
MIN_LENGTH = 4
#: outputs of these types are base64 images, never masked (``redact_json``'s ``keep``)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp"})
_BASE64 = re.compile(r"(base64,[A-Za-z0-9+/=\s]+)")


def secret_values(store: Store) -> tuple[str, ...]:
    """The values to mask: every secret of every scope (of at least :data:`MIN_LENGTH`
    characters), longest first so that a secret holding another is masked whole."""
    values = {v for _, key, v, _ in store.secret_rows() if key is not None and v is not None}
    return tuple(sorted((v for v in values if len(v) >= MIN_LENGTH), key=len, reverse=True))


def redact(text: str, values: Sequence[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def redact_html(text: str, values: Sequence[str]) -> str:
    """A page's HTML with each value masked as written and as HTML-escaped; the base64 of
    ``data:`` URLs (plots) is left whole, where a short value could match by chance."""
    if not values:
        return text
    forms = sorted(
        {f for v in values for f in (v, html.escape(v), html.escape(v, quote=False))},
        key=len,
        reverse=True,
    )
    pieces = _BASE64.split(text)
    for index in range(0, len(pieces), 2):  # the odd ones are base64 payloads
        for form in forms:
            if form in pieces[index]:
                pieces[index] = pieces[index].replace(form, REDACTED)
    return "".join(pieces)


def redact_json(value: Any, values: Sequence[str], *, keep: frozenset[str] = frozenset()) -> Any:
    """A copy of a JSON value with every string (keys included) masked, except the values of
    the keys in ``keep`` (an image's base64, where a short value could match by chance);
    walked with a stack, so any depth is safe."""
    if not values:
        return value
    root: list[Any] = [value]
    # (container, key of the slot to fill, the value for it)
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        container, slot, item = stack.pop()
        if isinstance(item, str):
            container[slot] = redact(item, values)
        elif isinstance(item, dict):
            copy: dict[str, Any] = {}
            for key, child in item.items():
                masked = redact(key, values) if isinstance(key, str) else key
                copy[masked] = child
                if key not in keep:
                    stack.append((copy, masked, child))
            container[slot] = copy
        elif isinstance(item, list):
            items: list[Any] = list(item)
            stack.extend((items, index, child) for index, child in enumerate(item))
            container[slot] = items
        else:
            container[slot] = item
    return root[0]
