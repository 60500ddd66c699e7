"""Secret masking: every resolved secret value is replaced by ``***`` in all output the tool
writes, and registered with the CI so the CI masks it too.

- :class:`Masker` holds the values (and derived forms: each line of a multi-line value, its
  URL-encoded form, the keys inside a connection string) and masks text.
- :class:`MaskingStream` wraps a text stream (stdout, stderr). It holds back an unfinished line
  until a newline, a carriage return or ``flush()``, so a value written in pieces is masked too.
- :class:`MaskingFilter` masks log records (message, arguments, traceback) on a handler;
  :func:`masked_output` also installs a log-record factory so every handler sees masked text.
- :func:`register_secret` adds a value to the current masker (:func:`masker`: the one of the
  innermost :func:`masked_output`, so each CLI invocation starts with its own, else a default)
  and announces it to the CI: ``##vso[task.setsecret]`` when ``TF_BUILD`` is set (Azure
  DevOps), ``::add-mask::`` when ``GITHUB_ACTIONS`` is set. Those lines go to the real stdout
  (the real stderr when stdout is a JSON document: ``--json``, ``plan``), unmasked (that is
  how the agent learns the value; it does not echo them).
- Values shorter than :data:`MIN_LENGTH` are ignored: masking every ``v`` would garble all
  output (and the CI's own ``##vso`` commands) while protecting nothing.

:func:`orchestrator.config.resolve_secret` registers every value it returns, so nothing that
goes through it can be printed in clear once :func:`masked_output` is active (the CLI wraps
every command in it).
"""

from __future__ import annotations

import html
import io
import logging
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any, TextIO, cast
from urllib.parse import quote

__all__ = [
    "MASK",
    "Masker",
    "MaskingFilter",
    "MaskingStream",
    "masked_output",
    "masker",
    "register_secret",
]

MASK = "***"
#: Shorter values are not masked (nor announced): they cannot be secrets worth the name.
MIN_LENGTH = 4
_SECRET_PARTS = re.compile(
    r"(?:^|;)\s*(AccountKey|SharedAccessSignature|SharedAccessKey|Password|Pwd|ClientSecret)"
    r"\s*=\s*([^;]+)",
    re.IGNORECASE,
)


class Masker:
    """A thread-safe set of secret values; :meth:`mask` replaces them (longest first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._announce_to: TextIO | None = None
        self._ci: str | None = None
        self._announced: set[str] = set()

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._values)

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def add(self, value: str) -> None:
        forms = _forms(value)
        with self._lock:
            new = forms - self._values
            if not new:
                return
            self._values |= new
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            self._announce_locked(new)

    def mask(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def announce_to(self, out: TextIO | None, environ: Mapping[str, str]) -> None:
        """Announce values (those known now and later) to the CI through ``out``."""
        ci = None
        if environ.get("TF_BUILD"):
            ci = "azure-devops"
        elif environ.get("GITHUB_ACTIONS"):
            ci = "github-actions"
        with self._lock:
            self._announce_to, self._ci = out, ci
            self._announce_locked(set(self._values))

    def _announce_locked(self, values: set[str]) -> None:
        out, ci = self._announce_to, self._ci
        if out is None or ci is None:
            return
        for value in sorted(values - self._announced):
            if "\n" in value or "\r" in value:
                continue  # each line is announced as its own value
            if ci == "azure-devops":
                out.write(f"##vso[task.setsecret]{value}\n")
            else:
                escaped = value.replace("%", "%25")
                out.write(f"::add-mask::{escaped}\n")
            self._announced.add(value)
        out.flush()


def _forms(value: str) -> set[str]:
    """The value and the forms it may show up in; blanks are ignored."""
    forms = {value.strip()} if value.strip() else set()
    forms |= {line.strip() for line in value.splitlines() if line.strip()}
    for form in list(forms):
        forms |= {quote(form, safe=""), html.escape(form), html.escape(form, quote=False)}
        forms |= {m.group(2).strip() for m in _SECRET_PARTS.finditer(form) if m.group(2).strip()}
    return {f for f in forms if len(f) >= MIN_LENGTH}


_DEFAULT = Masker()
_ACTIVE: list[Masker] = []  # a stack: masked_output pushes its masker, pops it on exit


def masker() -> Masker:
    """The current masker: the innermost :func:`masked_output`'s, else a process default
    (streams and logging are process-wide, so masking is too)."""
    return _ACTIVE[-1] if _ACTIVE else _DEFAULT


def register_secret(value: str) -> None:
    """Mask ``value`` from now on in everything written under the current
    :func:`masked_output`, and tell the CI."""
    masker().add(value)


class MaskingStream(io.TextIOBase):
    """A text stream that masks secrets before they reach ``target``."""

    def __init__(self, target: TextIO, masker: Masker) -> None:
        super().__init__()
        self.target = target
        self._masker = masker
        self._pending = ""
        self._lock = threading.RLock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            cut = max(self._pending.rfind("\n"), self._pending.rfind("\r"))
            if cut >= 0:
                ready, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
                self.target.write(self._masker.mask(ready))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self.target.write(self._masker.mask(self._pending))
                self._pending = ""
            self.target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.target, "errors", None)


class MaskingFilter(logging.Filter):
    """Masks a record's message, arguments and traceback text (attach it to handlers)."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self._masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_record(record, self._masker)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._masker.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self._masker.mask(record.stack_info)
        return True


def _mask_record(record: logging.LogRecord, masker: Masker) -> None:
    if not masker.active:
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's to report
        return
    masked = masker.mask(message)
    if masked != message or record.args:
        record.msg, record.args = masked, None


@contextmanager
def masked_output(
    *,
    environ: Mapping[str, str],
    masker: Masker | None = None,
    announce_on_stderr: bool = False,
) -> Iterator[Masker]:
    """Within: ``sys.stdout``/``sys.stderr`` mask secrets, so do log records (a record factory
    for every handler, and a :class:`MaskingFilter` on the root handlers for tracebacks), and
    values are announced to the CI on the real stdout, or the real stderr with
    ``announce_on_stderr`` (a command whose stdout is a JSON document: both CI agents read
    their commands from either stream, GitHub's runner and Azure Pipelines' agent alike).
    Everything is restored on exit. Without ``masker``, a new one: values registered within
    stay within."""
    masker = masker or Masker()
    real_out, real_err = sys.stdout, sys.stderr
    out, err = MaskingStream(real_out, masker), MaskingStream(real_err, masker)
    old_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = old_factory(*args, **kwargs)
        _mask_record(record, masker)
        return record

    log_filter = MaskingFilter(masker)
    handlers = list(logging.getLogger().handlers)
    masker.announce_to(real_err if announce_on_stderr else real_out, environ)
    _ACTIVE.append(masker)
    sys.stdout, sys.stderr = cast(TextIO, out), cast(TextIO, err)
    logging.setLogRecordFactory(factory)
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        yield masker
    finally:
        for stream in (out, err):
            with suppress(OSError, ValueError):
                stream.flush()
        for handler in logging.getLogger().handlers:
            handler.removeFilter(log_filter)
        logging.setLogRecordFactory(old_factory)
        sys.stdout, sys.stderr = real_out, real_err
        _ACTIVE.remove(masker)
        masker.announce_to(None, environ)
