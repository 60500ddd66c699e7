"""The kernel's one Spark session source, shared by the modules that patch pyspark.

``spark`` (:class:`~.spark_session.SparkProxy`) registers itself here when the shim is
installed; the patched pyspark methods (:mod:`.spark_hooks`, :mod:`.sql_runner`,
:mod:`.spark_writes`) find the session, the table registry and the "Spark was used in this
cell" flag through :func:`active`, so none of them imports the proxy (no import cycle).

It runs inside user kernels: standard library only.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["SESSION_CONF", "SessionSource", "active", "set_active", "set_widgets", "widgets"]


#: the confs every session of the local workspace starts with (``RESET`` restores them)
SESSION_CONF = {
    "spark.sql.sources.default": "delta",
    "spark.sql.session.timeZone": "Etc/UTC",
}


class SessionSource(Protocol):
    """What the patches need of ``spark``."""

    @property
    def connected(self) -> bool: ...

    def session(self) -> Any:
        """The cluster's session, created on first use."""

    def mark_used(self, *, ddl: bool = False) -> None:
        """Spark was used in this cell (``ddl``: tables may have been dropped and made
        again): record the catalog's changes after it."""

    def sync_tables(self) -> None:
        """Register the tables other sessions created meanwhile."""

    def flush(self) -> None:
        """Record now the tables this session created or dropped (a child notebook starts)."""


_ACTIVE: list[SessionSource] = []
_WIDGETS: list[Any] = []


def set_active(source: SessionSource) -> None:
    _ACTIVE[:] = [source]


def active() -> SessionSource | None:
    return _ACTIVE[0] if _ACTIVE else None


def set_widgets(util: Any) -> None:
    """``dbutils.widgets``, which SQL reads (named parameter markers, ``CREATE WIDGET``)."""
    _WIDGETS[:] = [util]


def widgets() -> Any:
    """``dbutils.widgets`` of this kernel, or None outside a notebook."""
    return _WIDGETS[0] if _WIDGETS else None
