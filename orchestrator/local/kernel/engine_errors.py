"""Spark errors as a notebook shows them: one message that says who is at fault, no gRPC noise.

Errors from the engine reach a notebook as pyspark exceptions raised deep in its Spark Connect
client, with a traceback of the client's internals and, once ipykernel's logging setup has
re-enabled pyspark's logger, a JSON "GRPC Error received" record on stderr. This module owns:

* :class:`UnsupportedByLocalEngine`, what the compatibility layer raises for a refused
  statement or API (the statement, the engine and its version, why, what to use instead);
* :func:`quiet_connect_logging`, which turns that logger off again;
* :func:`show_spark_error`, the IPython handler of Spark errors: the user's frames only, and a
  message that names the statement (and the SQL cell) that failed and says whether the local
  engine or the notebook's SQL is at fault (:func:`fault`).

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import types
from typing import Any, Literal

from .sql_text import one_line

__all__ = [
    "UnsupportedByLocalEngine",
    "annotate",
    "engine_name",
    "fault",
    "jvm_attribute_error",
    "quiet_connect_logging",
    "show_spark_error",
]

Fault = Literal["engine", "sql", "syntax"]

#: attribute set on an exception raised by a statement: ``(statement, where)``
STATEMENT_ATTRIBUTE = "__orch_statement__"
_ANNOTATED = "__orch_annotated__"
_SAIL_PARSE = re.compile(r"invalid argument: found (.+?) at (\d+):(\d+) expected")
#: statements of Databricks SQL: a parse error on one of these words, as the first word of a
#: statement, is the engine's (it does not know the statement); on another word, the SQL's
_STATEMENT_WORDS = frozenset(
    {
        *("ADD", "ALTER", "ANALYZE", "APPLY", "BEGIN", "CACHE", "CALL", "CLEAR", "CLONE"),
        *("COMMENT", "CONVERT", "COPY", "CREATE", "DECLARE", "DELETE", "DENY", "DESC"),
        *("DESCRIBE", "DROP", "EXECUTE", "EXPLAIN", "FROM", "FSCK", "GENERATE", "GET", "GRANT"),
        *("INSERT", "LIST", "LOAD", "MERGE", "MSCK", "OPTIMIZE", "PUT", "REFRESH", "REMOVE"),
        *("REORG", "REPAIR", "REPLACE", "RESET", "RESTORE", "REVOKE", "SELECT", "SET", "SHOW"),
        *("SYNC", "TABLE", "TRUNCATE", "UNCACHE", "UNDROP", "UPDATE", "USE", "VACUUM"),
        *("VALUES", "WITH"),
    }
)
_ENGINE_WORDS = ("not implemented", "not supported", "unsupported", "no data source found")
_SQL_TYPES = frozenset(
    {
        "AnalysisException",
        "ArithmeticException",
        "NumberFormatException",
        "DateTimeException",
        "ArrayIndexOutOfBoundsException",
        "SparkRuntimeException",
        "SparkNoSuchElementException",
        "PythonException",
        "ParseException",
        "IllegalArgumentException",
        "StreamingQueryException",
    }
)


@functools.cache
def engine_name() -> str:
    """The local engine and its version, as messages name it: ``Sail 0.7.2`` (the host says
    which, ``$ORCH_SPARK_ENGINE``: the engine is not installed in the kernel's environment)."""
    from importlib import metadata

    if os.environ.get("ORCH_SPARK_ENGINE"):
        return os.environ["ORCH_SPARK_ENGINE"]
    try:
        return f"Sail {metadata.version('pysail')}"
    except metadata.PackageNotFoundError:
        return "Spark (local)"


class UnsupportedByLocalEngine(Exception):
    """A statement or API the local engine lacks and the compatibility layer cannot stand in
    for: refused, with why and what to use instead (docs/spark.md lists them all)."""

    def __init__(self, what: str, *, reason: str, instead: str, where: str = "") -> None:
        self.what = what
        self.reason = reason
        self.instead = instead
        self.where = where
        place = f" (in {where})" if where else ""
        super().__init__(
            f"`{what}`{place} is not supported by the local Spark engine ({engine_name()}): "
            f"{reason}. Use {instead} instead."
        )


def quiet_connect_logging() -> None:
    """Turn off pyspark's Spark Connect logger (its "GRPC Error received" JSON records), as
    pyspark does unless ``SPARK_CONNECT_LOG_LEVEL`` asks for it: ipykernel's logging set-up
    re-enables loggers that existed before it, such as those of a pre-imported pyspark."""
    if "SPARK_CONNECT_LOG_LEVEL" not in os.environ:
        logging.getLogger("pyspark.sql.connect.logging").disabled = True


def fault(exc: BaseException, statement: str | None = None) -> Fault | None:
    """Who is at fault for a Spark error: the local ``engine`` (it lacks something),
    the notebook's ``sql`` (or data: Databricks fails too), or, for a statement the engine
    cannot parse, ``syntax`` when the text alone cannot tell which; None when unknown."""
    name = type(exc).__name__
    text = str(exc)
    lowered = text.lower()
    parse = _SAIL_PARSE.search(text)
    if parse is not None:
        return _parse_fault(parse, statement)
    if name == "UnsupportedOperationException" or any(w in lowered for w in _ENGINE_WORDS):
        return "engine"
    if "StatusCode.UNAVAILABLE" in text or "failed to connect" in lowered:
        return "engine"
    if name in _SQL_TYPES:
        return "sql"
    return None


def _parse_fault(parse: re.Match[str], statement: str | None) -> Fault:
    if statement is None:
        return "syntax"
    from .sql_text import tokens

    toks = tokens(statement)
    start = int(parse.group(2))
    if toks and toks[0].start == start:
        return "engine" if toks[0].upper in _STATEMENT_WORDS else "sql"
    return "syntax"


def _verdict(kind: Fault | None) -> str:
    engine = engine_name()
    if kind == "engine":
        return (
            f"Cause: the local Spark engine ({engine}) lacks this; it may run on Databricks "
            "(docs/spark.md lists what the local workspace translates, emulates or refuses)."
        )
    if kind == "sql":
        return "Cause: the notebook's SQL or data, not the local engine."
    if kind == "syntax":
        return (
            f"Cause: the local Spark engine ({engine}) cannot parse this statement: a syntax "
            "error, or Databricks SQL the engine lacks (see docs/spark.md)."
        )
    return ""


def annotate(exc: BaseException) -> None:
    """Add to a Spark error's message the statement that raised it and who is at fault,
    once (pyspark exceptions keep their message in ``_message``)."""
    if getattr(exc, _ANNOTATED, False) or isinstance(exc, UnsupportedByLocalEngine):
        return
    context = getattr(exc, STATEMENT_ATTRIBUTE, None)
    statement, where = context if isinstance(context, tuple) else (None, "")
    lines = []
    if statement is not None:
        place = f"In {where}" if where else "Statement"
        lines.append(f"{place}: {one_line(statement, 300)}")
    verdict = _verdict(fault(exc, statement))
    if verdict:
        lines.append(verdict)
    message = getattr(exc, "_message", None)
    if lines and isinstance(message, str):
        try:
            exc._message = message.rstrip() + "\n" + "\n".join(lines)  # type: ignore[attr-defined]
        except AttributeError:
            return
    setattr(exc, _ANNOTATED, True)


def _hidden(filename: str) -> bool:
    return any(part in filename for part in _hidden_parts())


@functools.cache
def _hidden_parts() -> tuple[str, ...]:
    """Folders whose frames a Spark error's traceback leaves out: pyspark's, grpc's and this
    package's (what the user wrote is what is left)."""
    here = os.path.dirname(os.path.abspath(__file__))  # noqa: PTH100, PTH120
    parts = [here + os.sep]
    for module in ("pyspark", "grpc", "google.protobuf"):
        import importlib.util

        spec = importlib.util.find_spec(module.split(".")[0])
        if spec is not None and spec.submodule_search_locations:
            parts += [str(p) + os.sep for p in spec.submodule_search_locations]
    return tuple(parts)


def _user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    kept: list[types.TracebackType] = []
    while tb is not None:
        if not _hidden(tb.tb_frame.f_code.co_filename):
            kept.append(tb)
        tb = tb.tb_next
    rebuilt: types.TracebackType | None = None
    for frame in reversed(kept):
        rebuilt = types.TracebackType(rebuilt, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return rebuilt


def show_spark_error(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: types.TracebackType | None,
    tb_offset: int | None = None,
) -> list[str]:
    """IPython handler of Spark errors and refusals: the message with its statement and
    verdict (:func:`annotate`), and the traceback of the user's frames only; a SQL cell's
    error (raised by the cell's own runner) shows the message alone."""
    annotate(value)
    frames = None if getattr(value, "__orch_sql_cell__", False) else _user_frames(tb)
    if frames is None:
        stb = list(shell.InteractiveTB.get_exception_only(etype, value))
    else:
        stb = shell.InteractiveTB.structured_traceback(etype, value, frames, tb_offset)
    shell._showtraceback(etype, value, stb)
    return list(stb)


_NO_JVM_HINT = (
    "The local workspace runs notebooks like Databricks standard-access and serverless "
    "compute (Spark Connect): there is no SparkContext or RDD API. Use DataFrame APIs instead "
    "(spark.createDataFrame, spark.range, df.mapInPandas, spark.sparkContext.* -> spark.conf "
    "or spark.catalog)."
)


def jvm_attribute_error(attr: str) -> Exception:
    """The error Databricks' Spark Connect compute raises for ``attr``, plus a hint."""
    try:
        from pyspark.errors import PySparkAttributeError  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        from .common import SparkNotAvailable

        return SparkNotAvailable(f"{attr} is not available: {_NO_JVM_HINT}")

    class JvmAttributeNotSupported(PySparkAttributeError):  # type: ignore[misc, unused-ignore]
        def __str__(self) -> str:
            return f"{super().__str__()}\n{_NO_JVM_HINT}"

    return JvmAttributeNotSupported(
        errorClass="JVM_ATTRIBUTE_NOT_SUPPORTED", messageParameters={"attr_name": attr}
    )
