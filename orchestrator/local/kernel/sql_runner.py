"""One SQL statement through the compatibility layer: what ``spark.sql`` runs in a notebook.

:func:`run_statement` plans a statement (:mod:`.sql_compat`) and carries the plan out: the
engine's ``sql`` for what works or was translated, an emulation (:mod:`.sql_emulation`) for
what the kernel does itself, :class:`~.engine_errors.UnsupportedByLocalEngine` for what is
refused. A table the session does not know yet is looked up again after registering what
other sessions of the cluster created (:mod:`.spark_catalog`). An error raised by the
statement carries the statement (and the SQL cell's place) for its message
(:func:`~.engine_errors.annotate`). Every change the layer makes is recorded
(:mod:`.sql_events`).

It runs inside user kernels: standard library only at module level.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from .engine_errors import STATEMENT_ATTRIBUTE, UnsupportedByLocalEngine
from .spark_state import active
from .sql_compat import describe, plan
from .sql_emulation import EMULATIONS, NOTES, Context
from .sql_events import record

__all__ = ["run_statement", "with_table_retry"]

EngineSql = Callable[..., Any]
#: statements after which a table may have a new location: the registry re-reads them
_DDL = frozenset({"CREATE", "DROP", "REPLACE", "ALTER"})


def _not_found(exc: Exception) -> bool:
    text = str(exc)
    return "NOT_FOUND" in text or "not found" in text.lower()


def with_table_retry(call: Callable[[], Any]) -> Any:
    """``call()``, once more after registering the cluster's tables if it found no table (a
    session knows only the tables it registered; another one may have created it since)."""
    try:
        return call()
    except Exception as exc:
        source = active()
        if source is None or not _not_found(exc):
            raise
        source.sync_tables()
    return call()


def run_statement(
    session: Any,
    text: str,
    engine_sql: EngineSql,
    args: Any = None,
    *,
    where: str = "",
    analyse: bool = False,
) -> Any:
    """The DataFrame of one statement, as Databricks would give it (see the module doc).
    With ``analyse``, a query is analysed here (the engine does it lazily), so a table
    another session created meanwhile is found, and errors are raised by this call."""
    found = plan(text)
    source = active()
    if source is not None:
        source.mark_used(ddl=found.what.split(" ")[0] in _DDL)
        source.sync_tables()
    try:
        if found.kind == "refused":
            record("refused", found.what)
            raise UnsupportedByLocalEngine(
                describe(text), reason=found.reason, instead=found.instead, where=where
            )

        def engine(statement: str) -> Any:
            frame = engine_sql(session, statement, *(() if args is None else (args,)))
            if analyse:
                frame.schema  # noqa: B018 - analysed now
            return frame

        if found.kind == "emulated":
            assert found.emulation is not None
            record("emulated", f"{found.what}: {NOTES[found.emulation]}")
            emulate = EMULATIONS[found.emulation]
            context = Context(session, engine)
            return with_table_retry(lambda: emulate(context, found.args))
        if found.kind == "translated":
            record("translated", found.reason or "; ".join(found.statements))
        result = None
        for statement in found.statements:
            result = with_table_retry(functools.partial(engine, statement))
        return result
    except Exception as exc:
        if not hasattr(exc, STATEMENT_ATTRIBUTE):
            with contextlib.suppress(AttributeError):
                setattr(exc, STATEMENT_ATTRIBUTE, (text, where))
        raise
