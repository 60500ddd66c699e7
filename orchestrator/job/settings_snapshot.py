"""A snapshot of databricks-sdk's ``JobSettings`` type structure, shipped as package data.

Checking a job template against the SDK's dataclasses needs ``databricks.sdk.service.jobs``,
whose import runs ``databricks/sdk/__init__.py`` and loads every service module (~0.8 s): most
of ``orchestrator plan``'s start-up. The structure those checks need (fields in declared
order, which are required, their types, enum values) is small, so it is walked once from the
installed SDK and stored in ``job_settings_schema.json`` beside this module; the template checks
read that instead. The snapshot records the SDK version it was made from. A test regenerates it
from the locked SDK (``requirements.lock``) and compares, so a lock refresh that changes the job
settings forces a refresh of the snapshot in the same commit::

    python -m orchestrator.job.settings_snapshot --write         # regenerate from this SDK
    python -m orchestrator.job.settings_snapshot --check         # exit 1 when it is stale
    python -m orchestrator.job.settings_snapshot --check-latest  # drift from the newest; exit 0

A user's SDK may be newer than the snapshot, and Databricks adds job fields often, so the
template checks treat a field the snapshot does not know as a warning, not an error, unless it is
a near-miss of a known name (:func:`misspelling_of`).

The format (``version`` 1): ``sdk_version`` is the databricks-sdk release it was made from;
``root`` names the top type; ``types`` maps a qualified type name
(``jobs.JobSettings``) to ``{"fields": {name: TYPE}, "required": [name, ...]}`` for a dataclass
or ``{"enum": [value, ...]}`` for an enum. A field may be null exactly when it is not required
(``Optional[...]`` with a default in the SDK; the generator checks that this holds). A TYPE is
``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"any"``, a qualified type name,
``{"list": TYPE}`` or ``{"map": TYPE}`` (JSON object keys are strings). ``Optional[X]`` is
``X``; a union of several is its first member, as the template checks always read it.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator.adapters.databricks.snapshot import FORMAT_VERSION, TypeExpr, generate

__all__ = [
    "PYPI_JSON",
    "REFRESH_HINT",
    "SCHEMA_FILE",
    "TypeExpr",
    "check_latest",
    "dumps",
    "generate",
    "load_schema",
    "main",
    "misspelling_of",
    "schema_path",
]

SCHEMA_FILE = "job_settings_schema.json"
REFRESH_HINT = (
    "refresh it with .ci/lock --upgrade-package databricks-sdk, then "
    "python -m orchestrator.job.settings_snapshot --write"
)
#: Where ``--check-latest`` reads the newest databricks-sdk release (a package registry).
PYPI_JSON = "https://pypi.org/pypi/databricks-sdk/json"


def schema_path() -> Path:
    """Where the shipped snapshot lives in the source tree (for ``--write``)."""
    return Path(__file__).with_name(SCHEMA_FILE)


@functools.cache
def load_schema() -> dict[str, Any]:
    """The shipped snapshot (read once per process)."""
    text = resources.files("orchestrator.job").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    if schema.get("version") != FORMAT_VERSION:
        raise RuntimeError(f"{SCHEMA_FILE}: unsupported format version {schema.get('version')}")
    return schema


def dumps(schema: dict[str, Any]) -> str:
    """Stable text: one type per line, so a refresh shows as a readable diff."""
    lines = [
        "{",
        f'"version":{json.dumps(schema["version"])},',
        f'"sdk_version":{json.dumps(schema["sdk_version"])},',
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


def misspelling_of(name: str, known: Sequence[str]) -> str | None:
    """The known field ``name`` is most likely a typo of, or None when it looks like a new field.

    A near miss is at most 1 edit away for names of up to 5 characters and at most 2 edits for
    longer ones (insertions, deletions, substitutions and swaps of neighbours, as typos are
    made). Anything further, such as ``ai_function_task`` beside ``ai_runtime_task``, may be a
    field that Databricks added after the snapshot was made.
    """
    limit = 1 if len(name) <= 5 else 2
    best: tuple[int, str] | None = None
    for candidate in known:
        if abs(len(candidate) - len(name)) > limit:
            continue
        distance = _edit_distance(name.lower(), candidate.lower())
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, candidate)
    return best[1] if best else None


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus swaps of adjacent characters)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


def _installed_sdk_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("databricks-sdk")
    except metadata.PackageNotFoundError:
        return None


def _newest_sdk_version(url: str, timeout: float) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https URL)
        info: dict[str, Any] = json.load(response)
    return str(info["info"]["version"])


def check_latest(*, url: str = PYPI_JSON, timeout: float = 20.0) -> list[str]:
    """Lines that compare the snapshot with the installed and the newest databricks-sdk.

    Never raises for a network problem: this is a report for maintainers, not a gate.
    """
    snapshot = str(load_schema().get("sdk_version", "unknown"))
    installed = _installed_sdk_version()
    lines = [f"snapshot: databricks-sdk {snapshot}", f"installed: databricks-sdk {installed}"]
    try:
        newest = _newest_sdk_version(url, timeout)
    except (OSError, ValueError, KeyError) as exc:
        lines.append(f"newest: unknown ({exc})")
        return lines
    lines.append(f"newest: databricks-sdk {newest}")
    if newest != snapshot:
        lines.append(f"drift: the snapshot is older than the newest release; {REFRESH_HINT}")
    else:
        lines.append("drift: none")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.job.settings_snapshot",
        description="Regenerate or check the JobSettings snapshot from the installed SDK.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help=f"write {SCHEMA_FILE}")
    group.add_argument("--check", action="store_true", help="exit 1 when it is out of date")
    group.add_argument(
        "--check-latest",
        action="store_true",
        help="report how the snapshot compares with the newest databricks-sdk (always exit 0)",
    )
    args = parser.parse_args(argv)
    if args.check_latest:
        sys.stdout.write("".join(f"{line}\n" for line in check_latest()))
        return 0
    text = dumps(generate())
    path = schema_path()
    if args.write:
        path.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {path}\n")
        return 0
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if current != text:
        sys.stderr.write(
            f"{path} is out of date: run python -m orchestrator.job.settings_snapshot --write\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
