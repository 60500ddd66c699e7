"""The expression syntax of Azure Pipelines and GitHub Actions, as far as the pipelines in
devops/ use it: string and number literals, context paths (``github.ref``,
``variables['Build.Reason']``), function calls, ``!``, ``==``, ``!=``, ``&&``, ``||`` and
parentheses; and the conditions (``condition:`` / ``if:``) made of them, with each system's job
status functions. Syntax the evaluator does not know fails the test instead of being skipped:
extend the evaluator rather than working around it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, NoReturn

System = Literal["azure", "github"]
Status = Literal["succeeded", "failed", "canceled"]
STATUSES: tuple[Status, ...] = ("succeeded", "failed", "canceled")

#: A ``${{ ... }}`` in a string: an Azure template expression, a GitHub expression.
TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<op>==|!=|&&|\|\||[!()\[\],.])|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)


def truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, str):
        return value != ""
    return True


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    return bool(left == right)


def _member(container: Any, key: Any) -> Any:
    if isinstance(container, Mapping):
        wanted = str(key).casefold()
        return next((v for k, v in container.items() if str(k).casefold() == wanted), None)
    if isinstance(container, list) and isinstance(key, float) and key.is_integer():
        return container[int(key)] if 0 <= key < len(container) else None
    return None


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _functions(system: System, status: Status) -> dict[str, Callable[..., Any]]:
    """The functions of each CI system's expressions that the pipelines may use (lower case)."""

    def contains(haystack: Any, needle: Any) -> bool:
        if isinstance(haystack, list):
            return any(_equal(item, needle) for item in haystack)
        return str(needle).casefold() in as_text(haystack).casefold()

    def starts(text: Any, prefix: Any) -> bool:
        return as_text(text).casefold().startswith(as_text(prefix).casefold())

    def ends(text: Any, suffix: Any) -> bool:
        return as_text(text).casefold().endswith(as_text(suffix).casefold())

    shared: dict[str, Callable[..., Any]] = {
        "contains": contains,
        "startswith": starts,
        "endswith": ends,
        "always": lambda: True,
    }
    if system == "github":
        return shared | {
            "success": lambda: status == "succeeded",
            "failure": lambda: status == "failed",
            "cancelled": lambda: status == "canceled",
        }
    return shared | {
        "eq": _equal,
        "ne": lambda a, b: not _equal(a, b),
        "and": lambda *args: all(truthy(a) for a in args),
        "or": lambda *args: any(truthy(a) for a in args),
        "not": lambda a: not truthy(a),
        "in": lambda a, *options: any(_equal(a, o) for o in options),
        "succeeded": lambda: status == "succeeded",
        "failed": lambda: status == "failed",
        "canceled": lambda: status == "canceled",
        "succeededorfailed": lambda: status != "canceled",
    }


_STATUS_FUNCTIONS = frozenset(
    {"always", "success", "failure", "cancelled", "succeeded", "failed", "canceled"}
    | {"succeededorfailed"}
)


class _Expression:
    """Evaluates the expression syntax both CI systems share: string and number literals, context
    paths (``github.ref``, ``variables['Build.Reason']``), function calls, ``!``, ``==``, ``!=``,
    ``&&``, ``||`` and parentheses. String comparisons ignore case, as both systems do."""

    def __init__(
        self, text: str, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]
    ) -> None:
        self.text = text
        self.names = names
        self.functions = functions
        self.checks_status = False
        self.tokens: list[tuple[str, str]] = []
        position, end = 0, len(text.rstrip())
        while position < end:
            match = _TOKEN.match(text, position)
            if match is None or match.lastgroup is None:
                self._fail(f"unsupported syntax at {text[position:]!r}")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup)))
            position = match.end()
        self.position = 0

    def _fail(self, message: str) -> NoReturn:
        raise AssertionError(
            f"expression {self.text!r}: {message} (extend tests/pipelines/expressions.py)"
        )

    def value(self) -> Any:
        result = self._or()
        if self.position != len(self.tokens):
            self._fail(f"unexpected {self.tokens[self.position][1]!r}")
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            self._fail("unexpected end")
        self.position += 1
        return self.tokens[self.position - 1]

    def _expect(self, op: str) -> None:
        if self._take()[1] != op:
            self._fail(f"expected {op!r}")

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self.position += 1
            right = self._and()
            left = left if truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._equality()
        while self._peek() == "&&":
            self.position += 1
            right = self._equality()
            left = right if truthy(left) else left
        return left

    def _equality(self) -> Any:
        left = self._unary()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            left = _equal(left, self._unary()) == (op == "==")
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self.position += 1
            return not truthy(self._unary())
        return self._postfix()

    def _postfix(self) -> Any:
        value = self._primary()
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                kind, name = self._take()
                if kind != "name":
                    self._fail("expected a property name after '.'")
                value = _member(value, name)
            else:
                key = self._or()
                self._expect("]")
                value = _member(value, key)
        return value

    def _primary(self) -> Any:
        kind, text = self._take()
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "number":
            return float(text)
        if text == "(":
            value = self._or()
            self._expect(")")
            return value
        if kind != "name":
            self._fail(f"unexpected {text!r}")
        if self._peek() == "(":
            self.position += 1
            args: list[Any] = []
            if self._peek() != ")":
                args.append(self._or())
                while self._peek() == ",":
                    self.position += 1
                    args.append(self._or())
            self._expect(")")
            function = self.functions.get(text.lower())
            if function is None:
                self._fail(f"unknown function {text}()")
            self.checks_status |= text.lower() in _STATUS_FUNCTIONS
            return function(*args)
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if text.lower() == "null":
            return None
        for name, value in self.names.items():
            if name.casefold() == text.casefold():
                return value
        return self._fail(f"unknown name {text!r}")


def evaluate(text: str, names: Mapping[str, Any], system: System) -> Any:
    return _Expression(text, names, _functions(system, "succeeded")).value()


def condition_holds(
    condition: Any, status: Status, names: Mapping[str, Any], system: System
) -> bool:
    """Whether a step or job with this ``condition:`` / ``if:`` runs when the job so far has
    ``status``. Without a status function the condition implies success, as in both systems."""
    if condition is None:
        return status == "succeeded"
    if isinstance(condition, bool):
        return condition and status == "succeeded"
    text = str(condition).strip()
    wrapped = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    expression = _Expression(
        wrapped.group(1) if wrapped else text, names, _functions(system, status)
    )
    result = truthy(expression.value())
    return result if expression.checks_status else result and status == "succeeded"
