"""Where each value of a JSON document starts, by the path the job-settings checks name it
with (``tasks[0].notebook_task.notebook_path``), so a problem in ``job-template.json`` is
reported as ``file:line:col`` like a problem in ``orchestrator.yml``.

The standard library's parser keeps no positions, so this is a small recursive-descent scanner
over a document known to parse (the template is parsed before it is checked; job settings are
a few levels deep, far from any recursion limit).
"""

from __future__ import annotations

import json
import re

__all__ = ["json_positions", "position_of"]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")
_decoder = json.JSONDecoder()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.positions: dict[str, tuple[int, int]] = {}

    def skip(self, pos: int) -> int:
        match = _WHITESPACE.match(self.text, pos)
        return match.end() if match else pos

    def mark(self, path: str, pos: int) -> None:
        line = self.text.count("\n", 0, pos) + 1
        self.positions[path] = (line, pos - (self.text.rfind("\n", 0, pos) + 1) + 1)

    def value(self, pos: int, path: str) -> int:
        """Scan the value at ``pos``; the position after it."""
        pos = self.skip(pos)
        self.mark(path, pos)
        char = self.text[pos]
        if char == "{":
            return self.members(pos + 1, path, "}", keyed=True)
        if char == "[":
            return self.members(pos + 1, path, "]", keyed=False)
        if char == '"':
            return int(_decoder.raw_decode(self.text, pos)[1])
        match = _SCALAR.match(self.text, pos)
        if match is None:
            raise ValueError(f"not JSON at {pos}")
        return match.end()

    def members(self, pos: int, path: str, close: str, *, keyed: bool) -> int:
        index = 0
        pos = self.skip(pos)
        while self.text[pos] != close:
            if keyed:
                key, pos = _decoder.raw_decode(self.text, pos)
                pos = self.skip(pos) + 1  # the colon
                inner = f"{path}.{key}" if path else str(key)
            else:
                inner = f"{path}[{index}]"
            pos = self.skip(self.value(pos, inner))
            index += 1
            if self.text[pos] == ",":
                pos = self.skip(pos + 1)
        return pos + 1


def json_positions(text: str) -> dict[str, tuple[int, int]]:
    """``path -> (line, column)`` (1-based) of every value of ``text``; the root is ``""``.
    Empty when ``text`` is not JSON."""
    scanner = _Scanner(text)
    try:
        scanner.value(0, "")
    except (ValueError, IndexError):
        return {}
    return scanner.positions


def position_of(path: str, positions: dict[str, tuple[int, int]]) -> tuple[int, int] | None:
    """The position of ``path``, or of its nearest enclosing value that has one."""
    while True:
        if path in positions:
            return positions[path]
        if not path:
            return None
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
