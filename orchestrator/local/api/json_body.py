"""A request's JSON body, parsed within bounds: every way a body can be bad is a 400.

Python's ``json`` accepts what the service refuses and fails in ways a handler cannot
answer: ``NaN`` and ``Infinity`` are not JSON; an integer of 5,000 digits raises
``ValueError`` (the interpreter's digit limit) and one that fits Python but not 64 bits
overflows SQLite later; ``\\ud800`` decodes to a lone surrogate that cannot be written as
UTF-8 anywhere; a body nested 5,000 deep raises ``RecursionError``. Each is refused here,
before a handler sees the body, with the service's ``MALFORMED_REQUEST``.

The bounds are not documented by Databricks. They are modelled on the JSON parser its
services are built on (Jackson's ``StreamReadConstraints``: numbers of at most 1,000
characters, nesting at most 1,000 deep), made stricter where a real request never goes:
integers must fit the 64 bits every id and count of the REST API has, and nesting is at
most :data:`MAX_DEPTH` (job settings, the deepest documents, nest about eight deep).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from orchestrator.local.state.api_error import ApiError

__all__ = ["INT64_MAX", "INT64_MIN", "MAX_DEPTH", "MAX_NUMBER_CHARS", "parse_json_body"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")


def _malformed(reason: str) -> ApiError:
    message = f"Invalid JSON given in the body of the request: {reason}"
    return ApiError(400, "MALFORMED_REQUEST", message)


def _integer(text: str) -> int:
    if len(text) > 20:  # more digits than any 64-bit integer: do not even convert it
        raise _malformed(f"the number {text[:24]}... does not fit in 64 bits")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _malformed(f"the number {text} does not fit in 64 bits")
    return value


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _malformed(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        raise _malformed(f"the number {text[:40]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise _malformed(f"{name} is not a JSON value")


def parse_json_body(body: bytes) -> Any:
    """The JSON value of ``body``; 400 ``MALFORMED_REQUEST`` when it is not one the service
    would read: invalid JSON or UTF-8, non-finite or over-long numbers, integers outside 64
    bits, strings holding lone surrogates, or nesting deeper than :data:`MAX_DEPTH`."""
    try:
        value = json.loads(body, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise _malformed(f"nested more than {MAX_DEPTH} deep") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _malformed(str(exc)) from None
    check_value(value)
    return value


def check_value(value: Any) -> None:
    """400 when ``value`` (parsed JSON) nests deeper than :data:`MAX_DEPTH` or holds a string
    (a key included) that is not valid Unicode. Walked with an explicit stack, no recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise _malformed("a string holds a lone surrogate (not valid Unicode)")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise _malformed(f"nested more than {MAX_DEPTH} deep")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
