"""What a notebook printed, made readable: the one cleaning every report uses (console, JUnit,
CI annotations, ``--json``), so each shows the same text.

* ``\\r`` overwrites are resolved to each line's final state (a progress bar's last frame);
* ANSI escape sequences (colours, cursor moves, OSC titles) are removed;
* progress bars and spinners are removed: lines made mostly of bar and spinner characters
  (pip's ``━━━━``, tqdm's blocks, braille spinners), with their counters;
* escaped unicode is shown as unicode: Python's ``\\u2018``/``\\U0001f947`` and R's ``<U+2018>``
  (what R prints in a C locale);
* gRPC's internal debug lines (``GRPC Error received`` JSON) are removed: they repeat an error
  the cell reports anyway;
* runs of blank lines become one.
"""

from __future__ import annotations

import re

__all__ = ["clean_output"]

_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_PY_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})")
_R_ESCAPE = re.compile(r"<U\+([0-9A-Fa-f]{4,6})>")
#: characters progress bars and spinners are drawn with
_BAR = set("━─═█▉▊▋▌▍▎▏░▒▓■□▪▫●○◐◓◑◒|/\\-#=>.·•⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏⣾⣽⣻⢿⡿⣟⣯⣷ ")
_COUNTER = re.compile(
    r"\d+(?:\.\d+)?\s*(?:/\s*\d+(?:\.\d+)?)?\s*(?:[kMGT]i?B|B|it|s|%)?(?:/s)?|eta|ETA|[:\[\]()<>,?]"
)
_GRPC = re.compile(r'GRPC Error received|"grpc_status"|grpc_message')


def _unescape(text: str) -> str:
    def python(match: re.Match[str]) -> str:
        code = int(match.group(1) or match.group(2), 16)
        return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else match.group(0)

    text = _PY_ESCAPE.sub(python, text)
    return _R_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _final_state(line: str) -> str:
    """A line with ``\\r`` overwrites as it ended up on a terminal."""
    if "\r" not in line:
        return line
    frames = [f for f in line.split("\r") if f]
    return frames[-1] if frames else ""


def _is_progress(line: str) -> bool:
    """A progress bar or spinner frame: bar characters, with at most numbers and units."""
    stripped = line.strip()
    if not stripped:
        return False
    bar = sum(1 for c in stripped if c in _BAR and c not in " -./|#=>")
    if bar < 3 and not any(c in stripped for c in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"):
        return False
    rest = _COUNTER.sub("", stripped)
    return all(c in _BAR for c in rest)


def clean_output(text: str) -> str:
    """``text`` as a person should read it (see the module docstring)."""
    text = text.replace("\r\n", "\n")
    lines: list[str] = []
    for raw in text.split("\n"):
        line = _ANSI.sub("", _final_state(raw)).rstrip()
        if _is_progress(line) or _GRPC.search(line):
            continue
        line = _unescape(line)
        if not line and lines and not lines[-1]:
            continue
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)
