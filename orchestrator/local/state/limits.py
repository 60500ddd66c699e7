"""Limits and name rules of the service, checked before a request changes anything.

Where Databricks documents a limit, it is the documented one:

- Secrets API: a scope name is letters, digits, ``-``, ``_``, ``.`` and ``@``, at most 128
  characters; a key letters, digits, ``-``, ``_`` and ``.``, at most 128 characters; a value at
  most 128 KB (Secrets API reference, "Secret scopes").
- Jobs API: a job ``name`` and a run's ``run_name`` at most 4096 bytes in UTF-8, a job
  ``description`` at most 27,700 characters; a ``task_key`` at most 100 characters of letters,
  digits, ``-`` and ``_``; ``max_concurrent_runs`` 0..1000; a request at most 10 MB.
- Workspace API: ``workspace/import`` content is at most 10 MB *as base64* ("The
  base64-encoded content. This has a limit of 10 MB", else ``MAX_NOTEBOOK_SIZE_EXCEEDED``):
  the JSON request's ``content`` string is measured as sent, a multipart upload's bytes as
  their base64 would be (``4 * ceil(n / 3)``), so about 7.5 MB of bytes fit.
- Workspace and DBFS paths: the documentation gives no number. The service answers 400 for an
  over-long path; here a path is at most 4096 bytes in UTF-8 (the Jobs API's limit for names,
  and Linux's ``PATH_MAX``) and each name in it at most 255 bytes (the file-system limit of the
  tree that mirrors it). Both are checked before a folder is made, so a rejected path leaves
  nothing behind.
"""

from __future__ import annotations

import re

from orchestrator.local.state.api_error import ApiError, bad_request

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_IMPORT_BASE64",
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "MAX_SECRET_NAME",
    "MAX_TASK_KEY",
    "MAX_TITLE_BYTES",
    "base64_size",
    "check_description",
    "check_import_size",
    "check_path",
    "check_secret_key",
    "check_secret_scope",
    "check_task_key",
    "check_title",
    "normalize_path",
]

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_SECRET_NAME = 128
MAX_TASK_KEY = 100
MAX_TITLE_BYTES = 4096  # job name, run_name
MAX_DESCRIPTION_CHARS = 27_700
MAX_IMPORT_BASE64 = 10 * 1024 * 1024  # workspace/import content, base64-encoded
_SCOPE = re.compile(r"[A-Za-z0-9_.@-]+")
_KEY = re.compile(r"[A-Za-z0-9_.-]+")
_TASK_KEY = re.compile(r"[A-Za-z0-9_-]+")


def check_path(raw: str, *, field: str) -> None:
    """An over-long path, or one with an over-long name, is 400 before anything is made."""
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES:
        raise bad_request(
            f"Invalid {field}: the path is {size} bytes long; at most {MAX_PATH_BYTES} are allowed"
        )
    for part in raw.split("/"):
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise bad_request(
                f"Invalid {field}: the name '{part[:40]}...' is longer than {MAX_NAME_BYTES} bytes"
            )


def _check_secret_name(value: str, pattern: re.Pattern[str], what: str, allowed: str) -> None:
    if len(value) > MAX_SECRET_NAME or not pattern.fullmatch(value):
        raise bad_request(
            f"{what} '{value[:MAX_SECRET_NAME]}' is invalid: it must consist of alphanumeric "
            f"characters, {allowed}, and be at most {MAX_SECRET_NAME} characters"
        )


def check_secret_scope(scope: str) -> None:
    _check_secret_name(scope, _SCOPE, "Scope name", "dashes, underscores, '@' and periods")


def check_secret_key(key: str) -> None:
    _check_secret_name(key, _KEY, "Secret key", "dashes, underscores and periods")


def check_task_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise bad_request("Invalid task: task_key is required")
    if len(key) > MAX_TASK_KEY or not _TASK_KEY.fullmatch(key):
        raise bad_request(
            f"Invalid task_key '{key[:MAX_TASK_KEY]}': at most {MAX_TASK_KEY} characters of "
            "letters, digits, '-' and '_'"
        )
    return key


def check_title(value: object, *, field: str) -> None:
    """A job ``name`` or ``run_name``: a string of at most 4096 bytes in UTF-8."""
    if value is None:
        return
    if not isinstance(value, str):
        raise bad_request(f"Invalid {field}: expected a string")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_TITLE_BYTES:
        raise bad_request(f"Invalid {field}: at most {MAX_TITLE_BYTES} bytes in UTF-8")


def check_description(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION_CHARS:
        raise bad_request(f"Invalid description: a string of at most {MAX_DESCRIPTION_CHARS} chars")


def normalize_path(raw: str, *, field: str = "path") -> str:
    """An absolute workspace path without ``/Workspace`` prefix, trailing slash or dot segments."""
    if not raw or not raw.startswith("/"):
        raise bad_request(f"Invalid {field}: '{raw[:200]}' is not an absolute path")
    check_path(raw, field=field)
    if "\x00" in raw or any(ord(ch) < 32 for ch in raw):
        raise bad_request(f"Invalid {field}: contains control characters")
    parts = [p for p in raw.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise bad_request(f"Invalid {field}: '{raw[:200]}' contains '.' or '..' segments")
    if parts[:1] == ["Workspace"]:
        parts = parts[1:]
    return "/" + "/".join(parts)


def base64_size(size: int) -> int:
    """The length of the base64 encoding of ``size`` bytes."""
    return 4 * -(-size // 3)


def check_import_size(base64_length: int) -> None:
    """``workspace/import`` content over 10 MB of base64 is ``MAX_NOTEBOOK_SIZE_EXCEEDED``."""
    if base64_length > MAX_IMPORT_BASE64:
        raise ApiError(
            400,
            "MAX_NOTEBOOK_SIZE_EXCEEDED",
            f"File size imported is ({base64_length} bytes), "
            f"exceeded max size ({MAX_IMPORT_BASE64} bytes)",
        )
