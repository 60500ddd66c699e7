"""Rendering ``job-template.json`` into Jobs API job settings, checked before any remote call.

This module owns the template language and the job-settings checks:

* ``${name}`` inside a JSON string is replaced by ``values[name]``; a string that is exactly one
  placeholder (``"${timeout_seconds}"``) takes the value's JSON type, so numbers, booleans, lists
  and objects can be filled in too. ``$${`` is a literal ``${``. Databricks' own dynamic value
  references (``{{job.run_id}}``, ``{{job.parameters.x}}``, ``{{task.name}}``) are left alone.
* An unknown, malformed or unterminated placeholder and malformed JSON are :class:`UsageError`
  with ``file:line:col``; every placeholder problem is reported at once.
* The rendered settings are checked against databricks-sdk's job settings dataclasses (types,
  enums, required fields, misspelt field names) through the snapshot of their structure that
  :mod:`orchestrator.job.settings_snapshot` ships (importing the SDK would cost ~0.8 s). A field the
  snapshot does not know and that is no near miss of a known one is a warning, not an error: it may
  be new in Databricks since the snapshot's SDK release. The checks also apply rules the API
  enforces server-side (a name, at least one task, unique task keys, dependencies that exist and
  form no cycle, notebook paths, timeouts, ``max_concurrent_runs``).

The values filled in are the build stage's (:mod:`orchestrator.build.parameters`).
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from orchestrator.errors import UsageError
from orchestrator.job.json_positions import json_positions, position_of
from orchestrator.job.settings_snapshot import REFRESH_HINT, TypeExpr, load_schema, misspelling_of

if TYPE_CHECKING:
    pass

__all__ = [
    "JsonValue",
    "render_job",
    "render_template",
    "validate_job_settings",
]

log = logging.getLogger(__name__)

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_TOKEN = re.compile(r"\\.|\$\$\{|\$\{([^}]*)\}|\$\{", re.DOTALL)
_COLON = re.compile(r"\s*:")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TASK_KEY = re.compile(r"[\w.-]{1,100}")
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_INT_FIELDS = ("timeout_seconds", "max_retries", "min_retry_interval_millis")


def render_job(
    path: Path,
    *,
    values: Mapping[str, JsonValue],
    source: str | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """Read, render and validate ``path``; the result is ready for jobs create/reset.

    ``source`` is how errors name the file (default: ``path`` as given). Warnings (fields the
    snapshot does not know) are appended to ``warnings``, or logged when it is None.
    """
    source = source or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{source}: cannot read the job template: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source}: the job template is not UTF-8 text") from None
    settings = render_template(text, values=values, source=source)
    found = validate_job_settings(settings, source=source, positions=json_positions(text))
    if warnings is None:
        for line in found:
            log.warning("%s", line)
    else:
        warnings.extend(found)
    return settings


def render_template(text: str, *, values: Mapping[str, JsonValue], source: str) -> dict[str, Any]:
    """Fill the placeholders of a JSON template (no job-settings checks)."""
    _parse(text, source)  # malformed JSON is reported against the text the user wrote
    problems: list[str] = []
    pieces: list[str] = []
    done = 0
    for match in _STRING.finditer(text):
        pieces.append(text[done : match.start()])
        is_key = _COLON.match(text, match.end()) is not None
        pieces.append(_render_string(text, match, values, source, is_key, problems))
        done = match.end()
    pieces.append(text[done:])
    if problems:
        raise UsageError("\n".join(problems))
    rendered = _parse("".join(pieces), source)
    if not isinstance(rendered, dict):
        raise UsageError(f"{source}:1:1: a job template is a JSON object")
    return rendered


def _render_string(
    text: str,
    match: re.Match[str],
    values: Mapping[str, JsonValue],
    source: str,
    is_key: bool,
    problems: list[str],
) -> str:
    raw = match.group(0)[1:-1]
    if "$" not in raw:
        return match.group(0)
    parts: list[str] = []
    done = 0
    tokens = [t for t in _TOKEN.finditer(raw) if not t.group(0).startswith("\\")]
    for token in tokens:
        parts.append(_decode(raw[done : token.start()]))
        done = token.end()
        where = _position(text, match.start() + 1 + token.start(), source)
        if token.group(0) == "$${":
            parts.append("${")
            continue
        name = token.group(1)
        if name is None:
            problems.append(f"{where}: unterminated placeholder (write '$${{' for a literal '${{')")
            continue
        if not _NAME.fullmatch(name):
            problems.append(f"{where}: invalid placeholder {token.group(0)!r}")
            continue
        if name not in values:
            known = ", ".join(sorted(values)) or "none"
            problems.append(f"{where}: unknown placeholder ${{{name}}} (known: {known})")
            continue
        value = values[name]
        if len(tokens) == 1 and token.group(0) == raw and not isinstance(value, str):
            if is_key:
                problems.append(f"{where}: ${{{name}}} is used as a key and must be a string")
                continue
            return json.dumps(value)
        if isinstance(value, (dict, list)) or value is None:
            problems.append(f"{where}: ${{{name}}} is not text; use it as a whole string")
            continue
        parts.append(value if isinstance(value, str) else json.dumps(value))
    parts.append(_decode(raw[done:]))
    return json.dumps("".join(parts), ensure_ascii=False)


def _decode(raw: str) -> str:
    decoded: str = json.loads(f'"{raw}"')
    return decoded


def _position(text: str, offset: int, source: str) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{source}:{line}:{column}"


def _parse(text: str, source: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        duplicate = next((k for k in keys if keys.count(k) > 1), None)
        if duplicate is not None:
            raise UsageError(f"{source}: duplicate key {duplicate!r} in one JSON object")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise UsageError(f"{source}: the JSON is nested too deeply") from None


# -- job settings -----------------------------------------------------------------------------


def validate_job_settings(
    settings: Mapping[str, Any],
    *,
    source: str,
    positions: Mapping[str, tuple[int, int]] | None = None,
) -> list[str]:
    """Raise one UsageError listing every problem of these Jobs API job settings, one line per
    field (the first problem found), at ``file:line:col`` when the template's ``positions``
    are given; return one warning line per field that the snapshot does not know (it is sent
    as written)."""
    schema = load_schema()
    problems: list[str] = []
    unknown: list[str] = []
    _check_shape(settings, schema["root"], "", _Findings(problems, unknown), schema["types"])
    problems.extend(_check_rules(settings))
    if problems:
        lines: dict[str, str] = {}
        for problem in problems:
            field = problem.split(": ", 1)[0]
            where = position_of(field, dict(positions)) if positions else None
            at = f"{source}:{where[0]}:{where[1]}" if where else source
            lines.setdefault(field, f"{at}: invalid job settings: {problem}")
        raise UsageError("\n".join(lines.values()))
    version = schema.get("sdk_version", "unknown")
    return [
        f"{source}: {path}: not a field of the job settings in databricks-sdk {version} (the "
        f"snapshot this check uses); sent as written, in case it is new in Databricks; "
        f"{REFRESH_HINT}"
        for path in unknown
    ]


@dataclass(frozen=True, slots=True)
class _Findings:
    """Where the shape checks put what they find: problems (errors) and unknown fields."""

    problems: list[str]
    unknown: list[str]


_EXPECTED = {"str": "a string", "bool": "true or false", "int": "an integer", "float": "a number"}


def _is_primitive(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _check_shape(
    value: Any, kind: TypeExpr, path: str, found: _Findings, types: Mapping[str, Any]
) -> None:
    """Check JSON ``value`` against a type of the SDK snapshot (:mod:`.settings_snapshot`)."""
    where = path or "settings"
    if kind == "any":
        return
    if isinstance(kind, dict):
        if "list" in kind:
            if not isinstance(value, list):
                found.problems.append(f"{where}: expected a list")
                return
            for i, item in enumerate(value):
                _check_shape(item, kind["list"], f"{path}[{i}]", found, types)
        else:
            if not isinstance(value, dict):
                found.problems.append(f"{where}: expected an object")
                return
            for key, item in value.items():
                _check_shape(item, kind["map"], f"{path}.{key}", found, types)
        return
    if kind in _EXPECTED:
        if not _is_primitive(value, kind):
            found.problems.append(f"{where}: expected {_EXPECTED[kind]}")
        return
    spec = types[kind]
    if "enum" in spec:
        allowed: list[str] = spec["enum"]
        if value not in allowed:
            found.problems.append(f"{where}: expected one of {', '.join(allowed)}")
        return
    _check_object(value, spec, path, found, types)


def _check_object(
    value: Any, spec: Mapping[str, Any], path: str, found: _Findings, types: Mapping[str, Any]
) -> None:
    where = path or "settings"
    if not isinstance(value, dict):
        found.problems.append(f"{where}: expected an object")
        return
    fields: dict[str, TypeExpr] = spec["fields"]
    required: list[str] = spec["required"]
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        if key not in fields:
            known = misspelling_of(key, list(fields))
            if known is None:
                found.unknown.append(child)
            else:
                found.problems.append(f"{child}: unknown field (did you mean {known!r}?)")
            continue
        if item is None and key not in required:
            continue  # an optional field (Optional[...] in the SDK) may be null
        _check_shape(item, fields[key], child, found, types)
    for name in required:
        if name not in value:
            found.problems.append(f"{f'{path}.{name}' if path else name}: required")


#: the Jobs API's limit on a job's tasks (more than 100 need API 2.2, which the adapter uses)
MAX_TASKS = 1000


def _check_rules(settings: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    name = settings.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append("name: a job needs a name")
    problems.extend(_check_ints(settings, ""))
    runs = settings.get("max_concurrent_runs")
    if runs is not None and (not _is_int(runs) or runs < 1):
        problems.append("max_concurrent_runs: must be an integer >= 1")
    tasks = settings.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        problems.append("tasks: a job needs at least one task")
        return problems
    if len(tasks) > MAX_TASKS:
        problems.append(
            f"tasks: a job has at most {MAX_TASKS} tasks (the Jobs API's limit); this one has "
            f"{len(tasks)}: split the notebooks across templates or targets"
        )
    keys: dict[str, int] = {}
    job_clusters = settings.get("job_clusters")
    clusters = {
        c.get("job_cluster_key")
        for c in (job_clusters if isinstance(job_clusters, list) else [])
        if isinstance(c, dict) and isinstance(c.get("job_cluster_key"), str)
    }
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        key = task.get("task_key")
        if not isinstance(key, str):
            continue
        if key in keys:
            problems.append(f"tasks[{i}].task_key: {key!r} is already used by tasks[{keys[key]}]")
        elif not _TASK_KEY.fullmatch(key):
            problems.append(f"tasks[{i}].task_key: use letters, digits, '_', '-', '.' (max 100)")
        keys.setdefault(key, i)
        problems.extend(_check_ints(task, f"tasks[{i}]."))
        notebook = task.get("notebook_task")
        if isinstance(notebook, dict):
            path = notebook.get("notebook_path")
            if not isinstance(path, str) or not path.strip():
                problems.append(f"tasks[{i}].notebook_task.notebook_path: required")
            elif notebook.get("source", "WORKSPACE") == "WORKSPACE" and _leaves_build(path):
                problems.append(
                    f"tasks[{i}].notebook_task.notebook_path: {path!r} leaves the build folder; "
                    "give a path relative to it (tests/run_pytest) or an absolute one"
                )
        cluster_key = task.get("job_cluster_key")
        if isinstance(cluster_key, str) and cluster_key not in clusters:
            problems.append(f"tasks[{i}].job_cluster_key: no job cluster {cluster_key!r}")
    problems.extend(_check_dependencies(tasks, keys))
    problems.extend(_check_parameters(settings.get("parameters")))
    return problems


def _leaves_build(path: str) -> bool:
    """A relative notebook path (relative to the build folder) that climbs out of it."""
    if path.startswith("/") or path.startswith("${"):
        return False
    return posixpath.normpath(path).split("/")[0] == ".."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ints(obj: Mapping[str, Any], prefix: str) -> list[str]:
    return [
        f"{prefix}{name}: must be a non-negative integer"
        for name in _INT_FIELDS
        if name in obj and (not _is_int(obj[name]) or obj[name] < 0)
    ]


def _check_dependencies(tasks: list[Any], keys: Mapping[str, int]) -> list[str]:
    problems: list[str] = []
    graph: dict[str, list[str]] = {key: [] for key in keys}
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("task_key"), str):
            continue
        depends_on = task.get("depends_on")
        for j, dep in enumerate(depends_on if isinstance(depends_on, list) else []):
            target = dep.get("task_key") if isinstance(dep, dict) else None
            if not isinstance(target, str):
                continue
            if target == task["task_key"]:
                problems.append(f"tasks[{i}].depends_on[{j}]: a task cannot depend on itself")
            elif target not in keys:
                problems.append(f"tasks[{i}].depends_on[{j}].task_key: no task {target!r}")
            else:
                graph[task["task_key"]].append(target)
    cycle = _find_cycle(graph)
    if cycle:
        problems.append(f"tasks: dependencies form a cycle: {' -> '.join(cycle)}")
    return problems


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        trail: list[str] = [start]
        state[start] = 1
        while stack:
            node, index = stack[-1]
            if index < len(graph[node]):
                stack[-1] = (node, index + 1)
                nxt = graph[node][index]
                if state.get(nxt) == 1:
                    return [*trail[trail.index(nxt) :], nxt]
                if not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, 0))
                    trail.append(nxt)
            else:
                state[node] = 2
                stack.pop()
                trail.pop()
    return None


def _check_parameters(parameters: Any) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for i, parameter in enumerate(parameters if isinstance(parameters, list) else []):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if not isinstance(name, str):
            continue
        if not _PARAM_NAME.fullmatch(name):
            problems.append(f"parameters[{i}].name: use letters, digits, '_', '-' and '.'")
        if name in seen:
            problems.append(f"parameters[{i}].name: {name!r} is defined twice")
        seen.add(name)
    return problems
