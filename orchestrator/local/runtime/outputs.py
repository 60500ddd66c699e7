"""Cell outputs and run logs: kernel messages to nbformat outputs, within size budgets.

This module owns turning iopub messages into nbformat v4 outputs (stream, display_data,
execute_result, error; clear_output and update_display_data honoured), the truncation that
keeps one chatty cell from blowing memory or the executed notebook, the run's log text (head
and tail kept, a marker in between) and ANSI stripping for error traces.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any

__all__ = ["CellOutputs", "LogBuffer", "error_line", "one_line", "strip_ansi"]

STREAM_LIMIT = 500_000  # characters of stream text kept per cell
RICH_LIMIT = 5_000_000  # characters of display data kept per cell
LOG_HEAD = 700_000
LOG_TAIL = 250_000

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")

Output = dict[str, Any]


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves, OSC links)."""
    return _ANSI.sub("", text)


def one_line(text: str, *, limit: int = 1000) -> str:
    """Whitespace (newlines included) collapsed to single spaces, at most ``limit`` chars."""
    flat = " ".join(strip_ansi(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def error_line(ename: str | None, evalue: str | None) -> str:
    """One line for a kernel error: ``"<ename>: <evalue>"`` (IRkernel's ``"Error: ..."``)."""
    ename, evalue = ename or "", evalue or ""
    if ename == "ERROR" and evalue.startswith("Error"):  # IRkernel
        return one_line(evalue.replace("Error in eval(expr, envir, enclos):", "Error:", 1))
    return one_line(f"{ename}: {evalue}" if ename else evalue or "error")


class LogBuffer:
    """The run's stdout/stderr text: the first ``head`` and last ``tail`` characters."""

    def __init__(self, *, head: int = LOG_HEAD, tail: int = LOG_TAIL) -> None:
        self._head_limit = head
        self._tail_limit = tail
        self._head: list[str] = []
        self._head_size = 0
        self._tail: deque[str] = deque()
        self._tail_size = 0
        self._dropped = 0

    def write(self, text: str) -> None:
        """Append ``text``."""
        room = self._head_limit - self._head_size
        if room > 0:
            self._head.append(text[:room])
            self._head_size += min(room, len(text))
            text = text[room:]
        if not text:
            return
        self._tail.append(text)
        self._tail_size += len(text)
        while self._tail_size - len(self._tail[0]) >= self._tail_limit:
            self._dropped += len(self._tail[0])
            self._tail_size -= len(self._tail.popleft())
        if self._tail_size > self._tail_limit:
            excess = self._tail_size - self._tail_limit
            self._tail[0] = self._tail[0][excess:]
            self._tail_size -= excess
            self._dropped += excess

    def text(self) -> str:
        """Everything kept, with a marker where text was dropped."""
        tail = "".join(self._tail)
        if not self._dropped:
            return "".join(self._head) + tail
        marker = f"\n*** WARNING: logs truncated: {self._dropped} characters skipped ***\n"
        return "".join(self._head) + marker + tail


def _data_size(data: object) -> int:
    if isinstance(data, str):
        return len(data)
    return len(json.dumps(data, default=str))


class CellOutputs:
    """The nbformat outputs of one cell, built from iopub messages."""

    def __init__(
        self, *, log: LogBuffer, stream_limit: int = STREAM_LIMIT, rich_limit: int = RICH_LIMIT
    ) -> None:
        self.outputs: list[Output] = []
        self.execution_count: int | None = None
        self._log = log
        self._stream_limit = stream_limit
        self._rich_limit = rich_limit
        self._stream_size = 0
        self._rich_size = 0
        self._stream_truncated = False
        self._rich_truncated = False
        self._clear_pending = False
        self._displays: dict[str, list[Output]] = {}

    def handle(self, msg: dict[str, Any]) -> None:
        """Record one iopub message of an execution of this cell."""
        kind = msg.get("msg_type")
        content: dict[str, Any] = msg.get("content") or {}
        if kind == "execute_input":
            self.execution_count = content.get("execution_count")
        elif kind == "stream":
            self.add_stream(str(content.get("name", "stdout")), str(content.get("text", "")))
        elif kind in ("display_data", "execute_result"):
            self._add_rich(kind, content)
        elif kind == "update_display_data":
            display_id = (content.get("transient") or {}).get("display_id")
            for output in self._displays.get(str(display_id), []):
                output["data"] = content.get("data", {})
                output["metadata"] = content.get("metadata", {})
        elif kind == "error":
            self.add_error(
                str(content.get("ename", "")),
                str(content.get("evalue", "")),
                [str(line) for line in content.get("traceback") or ()],
            )
        elif kind == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self._clear()

    def _clear(self) -> None:
        self.outputs.clear()
        self._displays.clear()
        self._clear_pending = False

    def _before_output(self) -> None:
        if self._clear_pending:
            self._clear()

    def add_stream(self, name: str, text: str) -> None:
        """Append stream text, merged with a preceding output of the same stream."""
        if not text:
            return
        self._before_output()
        if self._stream_truncated:
            return
        room = self._stream_limit - self._stream_size
        if len(text) > room:
            self._stream_truncated = True
            text = text[: max(room, 0)] + (
                f"\n*** WARNING: output truncated: this cell printed more than "
                f"{self._stream_limit} characters ***\n"
            )
        self._stream_size += len(text)
        self._log.write(strip_ansi(text))
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.outputs.append({"output_type": "stream", "name": name, "text": text})

    def _add_rich(self, kind: str, content: dict[str, Any]) -> None:
        self._before_output()
        data = content.get("data") or {}
        size = _data_size(data)
        if self._rich_size + size > self._rich_limit:
            if not self._rich_truncated:
                self._rich_truncated = True
                self.add_stream(
                    "stderr",
                    f"\n*** WARNING: display output dropped: this cell displayed more than "
                    f"{self._rich_limit} characters ***\n",
                )
            return
        self._rich_size += size
        output: Output = {
            "output_type": kind,
            "data": data,
            "metadata": content.get("metadata") or {},
        }
        if kind == "execute_result":
            output["execution_count"] = content.get("execution_count")
        self.outputs.append(output)
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id:
            self._displays.setdefault(str(display_id), []).append(output)

    def add_error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        """Append an error output."""
        self._before_output()
        self.outputs.append(
            {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback}
        )

    def drop_last_error(self) -> None:
        """Remove the last error output (the one a ``dbutils.notebook.exit`` raises)."""
        if self.outputs and self.outputs[-1]["output_type"] == "error":
            del self.outputs[-1]
