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
- Workspace and DBFS paths: the REST API reference gives no number, so these are derived
  (a guess, said so in docs/local-workspace.md). A DBFS path is at most 1,024 bytes in UTF-8:
  DBFS keeps its files in object storage, whose object names are at most 1,024 characters
  (Azure Blob) or bytes (S3). A workspace path must fit Linux's ``PATH_MAX`` (4,096 bytes with
  its terminating NUL) where clusters see it, under ``/Workspace``: at most 4,085 bytes; here it
  must also fit under the folder that mirrors the tree (``workspace_path_limit``). Each name in
  a path is at most 255 bytes (the file-system limit of the mirror). All are checked before
  anything is made, so a rejected path leaves nothing behind.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from orchestrator.local.state.api_error import ApiError, bad_request

__all__ = [
    "MAX_DBFS_PATH_BYTES",
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
    "workspace_path_limit",
]

#: Linux's PATH_MAX, the terminating NUL included
PATH_MAX = 4096
#: a workspace path as clusters see it, under /Workspace, must fit PATH_MAX
MAX_PATH_BYTES = PATH_MAX - 1 - len("/Workspace")
#: object storage's limit on an object's name (Azure Blob: 1,024 characters; S3: bytes)
MAX_DBFS_PATH_BYTES = 1024
MAX_NAME_BYTES = 255
MAX_SECRET_NAME = 128
MAX_TASK_KEY = 100
MAX_TITLE_BYTES = 4096  # job name, run_name
MAX_DESCRIPTION_CHARS = 27_700
#: tasks of one job or submitted run ("A job can contain up to 1000 tasks")
MAX_JOB_TASKS = 1000
MAX_IMPORT_BASE64 = 10 * 1024 * 1024  # workspace/import content, base64-encoded
_SCOPE = re.compile(r"[A-Za-z0-9_.@-]+")
_KEY = re.compile(r"[A-Za-z0-9_.-]+")
_TASK_KEY = re.compile(r"[A-Za-z0-9_-]+")


def check_path(raw: str, *, field: str, max_bytes: int = MAX_PATH_BYTES) -> None:
    """An over-long path, or one with an over-long name, is 400 before anything is made."""
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise bad_request(
            f"Invalid {field}: the path is {size} bytes long; at most {max_bytes} are allowed"
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


def workspace_path_limit(mirror_root: Path) -> int:
    """The longest workspace path (bytes) whose copy under ``mirror_root`` still fits
    ``PATH_MAX``, and that clusters could open under ``/Workspace``."""
    mirrored = PATH_MAX - 1 - len(os.fsencode(mirror_root))
    return max(0, min(MAX_PATH_BYTES, mirrored))


def normalize_path(raw: str, *, field: str = "path", max_bytes: int = MAX_PATH_BYTES) -> str:
    """An absolute workspace path without ``/Workspace`` prefix, trailing slash or dot segments."""
    if not raw or not raw.startswith("/"):
        raise bad_request(f"Invalid {field}: '{raw[:200]}' is not an absolute path")
    check_path(raw, field=field, max_bytes=max_bytes)
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
