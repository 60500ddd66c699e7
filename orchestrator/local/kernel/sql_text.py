"""SQL text as the SQL cells and the compatibility layer read it: statements and tokens.

This module owns a small lexer for Spark SQL text (quoted strings with backslash escapes,
backquoted identifiers, ``--`` and nested ``/* */`` comments), the split of a cell into its
statements at top-level semicolons (:func:`split_statements`), the named parameter markers
of a statement (:func:`named_markers`, ``:name`` as Databricks reads it, never the ``::`` cast
or the ``col:path`` JSON path), and the renaming of a leading catalog name
(:func:`rename_catalog`). It parses no grammar: the engine does that; this only has to find
statement boundaries and words reliably, whatever the strings and comments hold.

It runs inside user kernels: standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Statement",
    "Token",
    "named_markers",
    "one_line",
    "rename_catalog",
    "split_statements",
    "tokens",
]

TokenKind = Literal["word", "quoted", "string", "op"]

_WORD = re.compile(r"[A-Za-z0-9_$]+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Token:
    """One lexeme: a word (keyword, identifier or number), a backquoted identifier, a string
    literal or one operator character (``::`` is one token); ``start``/``end`` index the text."""

    kind: TokenKind
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def name(self) -> str:
        """The identifier this token names (backquotes removed), or its text."""
        if self.kind == "quoted":
            return self.text[1:-1].replace("``", "`")
        return self.text


@dataclass(frozen=True)
class Statement:
    """One statement of a cell: its text (no trailing ``;``) and the cell line it starts on."""

    text: str
    line: int


class _Scanner:
    """Walks SQL text, yielding tokens and the positions of top-level semicolons."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_comment(self) -> bool:
        text, pos = self.text, self.pos
        if text.startswith("--", pos):
            end = text.find("\n", pos)
            self.pos = len(text) if end < 0 else end + 1
            return True
        if text.startswith("/*", pos):
            depth, pos = 1, pos + 2
            while pos < len(text) and depth:
                if text.startswith("/*", pos):
                    depth, pos = depth + 1, pos + 2
                elif text.startswith("*/", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
            self.pos = pos
            return True
        return False

    def _quoted(self, quote: str) -> int:
        """The end of the literal or identifier opened at ``self.pos`` by ``quote``."""
        text, pos = self.text, self.pos + 1
        while pos < len(text):
            char = text[pos]
            if char == "\\" and quote != "`":
                pos += 2
                continue
            if char == quote:
                if quote == "`" and text.startswith("``", pos):
                    pos += 2
                    continue
                return pos + 1
            pos += 1
        return len(text)  # unterminated: the engine will say so

    def next(self) -> Token | None:
        text = self.text
        while self.pos < len(text):
            space = _SPACE.match(text, self.pos)
            if space:
                self.pos = space.end()
                continue
            if self._skip_comment():
                continue
            start, char = self.pos, text[self.pos]
            if char in "'\"`":
                self.pos = self._quoted(char)
                kind: TokenKind = "quoted" if char == "`" else "string"
                return Token(kind, text[start : self.pos], start, self.pos)
            word = _WORD.match(text, start)
            if word:
                self.pos = word.end()
                return Token("word", word.group(), start, self.pos)
            self.pos += 2 if text.startswith("::", start) else 1
            return Token("op", text[start : self.pos], start, self.pos)
        return None


def tokens(text: str) -> list[Token]:
    """Every token of ``text``, comments and whitespace left out."""
    scanner = _Scanner(text)
    found: list[Token] = []
    while (token := scanner.next()) is not None:
        found.append(token)
    return found


def split_statements(text: str) -> list[Statement]:
    """The statements of a SQL cell, split at semicolons outside strings, identifiers and
    comments; statements holding only comments or whitespace are left out."""
    statements: list[Statement] = []
    start = 0
    seen_token = False
    scanner = _Scanner(text)

    def close(end: int) -> None:
        chunk = text[start:end]
        if seen_token:
            lead = len(chunk) - len(chunk.lstrip())
            line = text.count("\n", 0, start + lead) + 1
            statements.append(Statement(chunk.strip(), line))

    while (token := scanner.next()) is not None:
        if token.kind == "op" and token.text == ";":
            close(token.start)
            start, seen_token = token.end, False
        else:
            seen_token = True
    close(len(text))
    return statements


def named_markers(text: str) -> list[str]:
    """The names of the named parameter markers (``:name``) of a statement, in order of first
    use. A colon right after a word, an identifier or a closing bracket is Databricks' JSON
    path operator (``raw:owner``), and ``::`` is a cast: neither is a marker."""
    found: dict[str, None] = {}
    toks = tokens(text)
    for index, token in enumerate(toks):
        if token.kind != "op" or token.text != ":" or index + 1 >= len(toks):
            continue
        following = toks[index + 1]
        if following.kind not in ("word", "quoted") or following.start != token.end:
            continue
        previous = toks[index - 1] if index else None
        joined = previous is not None and previous.end == token.start
        if joined and previous is not None and _ends_value(previous):
            continue  # col:path
        found.setdefault(following.name, None)
    return list(found)


def _ends_value(token: Token) -> bool:
    return token.kind in ("word", "quoted") or token.text in (")", "]")


def rename_catalog(text: str, old: str, new: str) -> str:
    """``text`` with every multi-part name whose first part is ``old`` starting with ``new``
    instead (``spark_catalog.db.t`` -> ``hive_metastore.db.t``); strings are left alone."""
    toks = tokens(text)
    pieces: list[str] = []
    last = 0
    for index, token in enumerate(toks):
        if token.kind not in ("word", "quoted") or token.name.lower() != old:
            continue
        following = toks[index + 1] if index + 1 < len(toks) else None
        previous = toks[index - 1] if index else None
        if following is None or following.text != "." or following.start != token.end:
            continue
        if previous is not None and previous.text == "." and previous.end == token.start:
            continue  # x.spark_catalog.y: not a leading part
        pieces += [text[last : token.start], new]
        last = token.end
    return "".join(pieces) + text[last:] if pieces else text


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line (whitespace collapsed), at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
