"""What the compatibility layer did lately: translated, emulated or refused, and how.

Each statement or API call the layer changes records one event here. Nothing in a notebook
needs them; the compatibility suite (tests/local/test_spark_compat.py) reads them around each
operation it runs, so the table in docs/spark.md says what really happened, not what was
meant to. At most :data:`KEEP` events are kept.

It runs inside user kernels: standard library only.
"""

from __future__ import annotations

__all__ = ["KEEP", "record", "take"]

KEEP = 100
_EVENTS: list[tuple[str, str]] = []


def record(kind: str, detail: str) -> None:
    """Record that something was ``kind`` (translated, emulated, refused): ``detail`` says how."""
    _EVENTS.append((kind, detail))
    del _EVENTS[:-KEEP]


def take() -> list[tuple[str, str]]:
    """The events since the last call, oldest first."""
    events = list(_EVENTS)
    _EVENTS.clear()
    return events
