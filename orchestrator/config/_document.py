"""Reading ``orchestrator.yml`` into settings with every problem located: the YAML document is
walked node by node so each problem names ``file:line:col`` and the dotted field, and all of them
are reported at once (:class:`ConfigError`). The format and the precedence rules are described in
:mod:`orchestrator.config.loader`, which is the public entry point.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.config.schema import (
    ENV_VARS,
    LOADER_FIELDS,
    BuildConfig,
    is_secret_name,
    parse_secret_flag,
    section_model,
    settable_fields,
)
from orchestrator.errors import UsageError

__all__ = ["CONFIG_FILE_NAME", "ConfigError", "Loader", "Problem"]

CONFIG_FILE_NAME = "orchestrator.yml"

_TOP_LEVEL = ("version", "defaults", "targets")
_TARGET_NAME = re.compile(r"[A-Za-z0-9_-]+")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_MAX_NODES = 100_000
_MAX_DEPTH = 64
_LITERAL_SECRET = (
    "a literal secret is not allowed here; write {env: NAME} or {keyvault: secret-name}"  # noqa: S105
)

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One configuration problem; ``where`` is ``file:line:col``, an env var or the command line."""

    where: str
    field: str
    message: str
    order: tuple[int, int, int] = dataclasses.field(default=(9, 0, 0), compare=False, repr=False)

    def __str__(self) -> str:
        return ": ".join(part for part in (self.where, self.field, self.message) if part)


class ConfigError(UsageError):
    """Every configuration problem at once; ``str()`` is one line per problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        unique: dict[object, Problem] = {}
        for problem in problems:
            in_file = problem.order[0] == 0 and problem.order[1] > 0
            unique.setdefault((problem.where, problem.message) if in_file else problem, problem)
        ordered = sorted(unique.values(), key=lambda p: p.order)
        self.problems: tuple[Problem, ...] = tuple(ordered)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class _Origin:
    where: str
    order: tuple[int, int, int]
    field: str


class Loader:
    """One configuration file being read for one target; collects problems as it goes."""

    def __init__(self, *, path: Path | None, root: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.shown = _display(path, root) if path is not None else ""
        self.failed: set[Loc] = set()  # values already reported (e.g. an unset variable)
        self.environ = environ
        self.problems: list[Problem] = []
        self.origins: dict[Loc, _Origin] = {}
        self.nodes = 0
        self.constructor = yaml.constructor.SafeConstructor()

    # -- problems and positions -------------------------------------------------------------

    def _at(self, node: yaml.Node) -> tuple[str, tuple[int, int, int]]:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        return f"{self.shown}:{line}:{col}", (0, line, col)

    def note(self, where: str, field: str, message: str, rank: int) -> None:
        """A problem that is not in the file (1: environment, 2: command line)."""
        self.problems.append(Problem(where, field, message, (rank, 0, 0)))

    def problem(self, node: yaml.Node | None, field: str, message: str) -> None:
        if node is None:
            self.problems.append(Problem(self.shown, field, message, (0, 0, 0)))
        else:
            where, order = self._at(node)
            self.problems.append(Problem(where, field, message, order))

    # -- the file ----------------------------------------------------------------------------

    def implicit(self, target: str) -> dict[str, Any]:
        if target != "local":
            self.problems.append(
                Problem("", "", f"unknown target {target!r}: no {CONFIG_FILE_NAME} found")
            )
        return {}

    def read(self, target: str) -> dict[str, Any]:
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")
            document = yaml.compose(text, Loader=yaml.SafeLoader)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            self.problem(None, "", f"cannot read the file: {reason or exc}")
            return {}
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{self.shown}:{mark.line + 1}:{mark.column + 1}" if mark else self.shown
            order = (0, mark.line + 1, mark.column + 1) if mark else (0, 0, 0)
            message = " ".join(filter(None, (exc.context, exc.problem)))
            self.problems.append(Problem(where, "", f"invalid YAML: {message}", order))
            return {}
        except yaml.YAMLError as exc:
            self.problem(None, "", f"invalid YAML: {exc}")
            return {}
        if document is None:
            return self.implicit(target)
        if not isinstance(document, yaml.MappingNode):
            self.problem(document, "", "expected a mapping with 'defaults' and 'targets'")
            return {}
        return self._sections(document, target)

    def _sections(self, document: yaml.MappingNode, target: str) -> dict[str, Any]:
        sections = self._items(document, "")
        for name, (key_node, node) in sections.items():
            if name.startswith("x-"):
                self._section(node, name, interpolate=False, keep_origins=False, schema=None)
            elif name not in _TOP_LEVEL:
                self.problem(key_node, name, _unknown(name, _TOP_LEVEL))
        if "version" in sections:
            version_node = sections["version"][1]
            if not (isinstance(version_node, yaml.ScalarNode) and version_node.value == "1"):
                self.problem(version_node, "version", "only version 1 is supported")
        data: dict[str, Any] = {}
        if "defaults" in sections:
            key_node, node = sections["defaults"]
            data = self._section(node, "defaults", interpolate=True, keep_origins=True)
            self.origins[()] = _Origin(*self._at(key_node), field="defaults")
        targets: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if "targets" in sections:
            targets_node = sections["targets"][1]
            if isinstance(targets_node, yaml.MappingNode):
                targets = self._items(targets_node, "targets")
            elif not _is_null(targets_node):
                self.problem(targets_node, "targets", "expected a mapping of target names")
        for name, (key_node, node) in targets.items():
            display = f"targets.{name}"
            if not _TARGET_NAME.fullmatch(name):
                self.problem(key_node, display, "a target name uses letters, digits, '_', '-'")
            selected = name == target
            section = self._section(node, display, interpolate=selected, keep_origins=selected)
            if selected:
                _merge(data, section)
                self.origins[()] = _Origin(*self._at(key_node), field=display)
        if target not in targets and target != "local":
            known = ", ".join(sorted(targets)) or "none"
            self.problem(None, "", f"unknown target {target!r} (defined: {known})")
        return data

    def _section(
        self,
        node: yaml.Node,
        display: str,
        *,
        interpolate: bool,
        keep_origins: bool,
        schema: type[BaseModel] | None = BuildConfig,
    ) -> dict[str, Any]:
        if _is_null(node):
            return {}
        if schema is not None and not isinstance(node, yaml.MappingNode):
            self.problem(node, display, "expected a mapping of settings")
            return {}
        saved = self.origins
        if not keep_origins:
            self.origins = {}
        try:
            # schema None (x-* blocks): free-form, only the literal-secret rule applies
            value = self._convert(node, (), display, schema, interpolate=interpolate, depth=0)
        finally:
            self.origins = saved
        return value if schema is not None and isinstance(value, dict) else {}

    def _items(
        self, node: yaml.MappingNode, display: str
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys of a mapping (YAML merge keys ``<<`` flattened, explicit keys winning)."""
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        own: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged.update(self._items(source, display))
                    else:
                        self.problem(source, display, "'<<' merges only mappings")
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                self.problem(key_node, display, "keys must be plain strings")
                continue
            name = key_node.value
            if name in own:
                self.problem(key_node, _join(display, name), "duplicate key")
            own[name] = (key_node, value_node)
        return {**merged, **own}

    def _convert(
        self,
        node: yaml.Node,
        loc: Loc,
        display: str,
        schema: type[BaseModel] | None,
        *,
        interpolate: bool,
        depth: int,
    ) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            if self.nodes == _MAX_NODES + 1 or depth == _MAX_DEPTH + 1:
                self.problem(node, display, "the document is too large or too deeply nested")
            return None
        self.origins[loc] = _Origin(*self._at(node), field=display)
        deeper: dict[str, Any] = {"interpolate": interpolate, "depth": depth + 1}
        if isinstance(node, yaml.MappingNode):
            # by the name the file uses (a field's alias where it has one)
            fields = (
                {info.alias or name: info for name, info in schema.model_fields.items()}
                if schema is not None
                else None
            )
            result: dict[str, Any] = {}
            for name, (key_node, value_node) in self._items(node, display).items():
                shown = _join(display, name)
                if is_secret_name(name) and _is_literal(value_node):
                    self.problem(value_node, shown, _LITERAL_SECRET)
                    continue
                reserved = LOADER_FIELDS if schema is BuildConfig else frozenset()
                if fields is not None and (name not in fields or name in reserved):
                    allowed = [f for f in fields if f not in reserved]
                    self.problem(key_node, shown, _unknown(name, allowed))
                    continue
                child = section_model(fields[name].annotation) if fields is not None else None
                result[name] = self._convert(value_node, (*loc, name), shown, child, **deeper)
            return result
        if isinstance(node, yaml.SequenceNode):
            items = enumerate(node.value)
            return [
                self._convert(n, (*loc, i), f"{display}[{i}]", None, **deeper) for i, n in items
            ]
        try:
            value = self.constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self.problem(node, display, f"cannot read this value: {getattr(exc, 'problem', exc)}")
            return None
        if interpolate and node.tag == _STR_TAG and isinstance(value, str):
            try:
                return _interpolate(value, self.environ)
            except ValueError as exc:
                self.problem(node, display, str(exc))
                self.failed.add(loc)
                return None
        return value

    # -- environment and flags ---------------------------------------------------------------

    def apply_environment(self, data: dict[str, Any]) -> None:
        for name, dotted in ENV_VARS.items():
            value = self.environ.get(name, "")
            if value.strip():
                loc = tuple(dotted.split("."))
                _assign(data, loc, value)
                self._forget(loc)
                self.origins[loc] = _Origin(f"environment {name}", (1, 0, 0), dotted)

    def apply_overrides(self, data: dict[str, Any], overrides: Mapping[str, str]) -> None:
        settable = settable_fields()
        for dotted, raw in overrides.items():
            if dotted not in settable:
                self.note("command line", dotted, _unknown(dotted, sorted(settable)), 2)
                continue
            loc = tuple(dotted.split("."))
            value: Any = raw
            if settable[dotted] == "secret":
                value = parse_secret_flag(raw)
                if value is None:
                    self.note("command line", dotted, "expected env:NAME or keyvault:NAME", 2)
                    continue
            elif settable[dotted] == "list":
                value = [part.strip() for part in raw.split(",") if part.strip()]
            _assign(data, loc, value)
            self._forget(loc)
            self.origins[loc] = _Origin("command line", (2, 0, 0), dotted)

    def _forget(self, loc: Loc) -> None:
        self.failed = {f for f in self.failed if f[: len(loc)] != loc}
        for known in [k for k in self.origins if k[: len(loc)] == loc]:
            del self.origins[known]

    # -- validation --------------------------------------------------------------------------

    def validate(self, data: dict[str, Any], *, root: Path) -> BuildConfig | None:
        try:
            config = BuildConfig.model_validate(data, context={"root": root})
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                if error["type"] == "extra_forbidden":
                    continue  # reported, with a suggestion, while reading the file
                self._located(tuple(error["loc"]), _clean(error["msg"]))
            return None
        for loc, message in config.cross_field_problems():
            self._located(loc, message)
        return config

    def _located(self, loc: Loc, message: str) -> None:
        if any(loc[: len(failed)] == failed for failed in self.failed):
            return
        for cut in range(len(loc), -1, -1):
            origin = self.origins.get(loc[:cut])
            if origin is not None:
                rest = _dotted(loc[cut:])
                field_name = (
                    f"{origin.field}{rest}" if rest.startswith("[") else _join(origin.field, rest)
                )
                self.problems.append(Problem(origin.where, field_name, message, origin.order))
                return
        self.problems.append(Problem(self.shown, _dotted(loc), message, (0, 0, 0)))


# -- helpers ----------------------------------------------------------------------------------


def _display(path: Path, root: Path) -> str:
    """The file as problems name it: relative to the repo root, else to the working folder."""
    resolved = path.resolve()
    for base in (root, Path.cwd()):
        try:
            return str(resolved.relative_to(base.resolve()))
        except (ValueError, OSError):
            continue
    return str(path)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix and name else prefix or name


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _clean(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _unknown(name: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown setting {name!r}{hint}"


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _is_literal(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and not _is_null(node) and node.value.strip() != ""


def _assign(data: dict[str, Any], loc: Loc, value: Any) -> None:
    node = data
    for part in loc[:-1]:
        child = node.get(str(part))
        if not isinstance(child, dict):
            child = {}
            node[str(part)] = child
        node = child
    node[str(loc[-1])] = value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _interpolate(text: str, environ: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        if match.group(1) is None:
            raise ValueError("unterminated '${' (write '$${' for a literal '${')")
        name, sep, fallback = match.group(1).partition(":-")
        if not _VAR_NAME.fullmatch(name):
            raise ValueError(f"invalid variable reference {whole!r}")
        value = environ.get(name)
        if sep:
            return value if value else fallback
        if value is None:
            raise ValueError(
                f"environment variable {name} is not set (or write ${{{name}:-default}})"
            )
        return value

    return _PLACEHOLDER.sub(substitute, text)
