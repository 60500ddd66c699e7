"""The runtime profiles the local workspace offers, keyed as Databricks keys its runtimes.

One list, here, for every place that names a runtime: ``clusters/spark-versions`` lists it,
``clusters/create`` and job clusters are checked against it, the default cluster uses
:data:`DEFAULT_SPARK_VERSION`. A profile is what a cluster of that runtime means on this
machine: its Python library set (``profiles/<version>.in``, locked in ``profiles/<version>.txt``,
installed by :mod:`.python_envs` into an environment of its own) and the local Spark engine.
A profile without a lock of its own runs on the libraries of the nearest one that has one
(:func:`environment_profile`), and so does a ``spark_version`` that is no profile; either
says so in the run's output. Adding a profile is adding a row (and, for libraries of its
own, its two files).

Keys and names follow ``clusters/spark-versions`` of the service: ``<major>.<minor>.x-scala<v>``
and ``"<version>[ LTS] (includes Apache Spark <spark>, Scala <v>)"``; databricks-sdk's
``select_spark_version`` reads ``LTS`` in the name and ``-scala<v>`` in the key. Versions are
Databricks' supported runtimes: 15.4 LTS (Spark 3.5.0), 16.4 LTS (3.5.2, in a Scala 2.12 and a
Scala 2.13 image), 17.3 LTS (4.0.0, Scala 2.13 only, as from runtime 17 on) and 18.0 (4.1.0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SPARK_VERSION",
    "PROFILES",
    "RuntimeProfile",
    "environment_profile",
    "profile",
]


@dataclass(frozen=True)
class RuntimeProfile:
    """``python`` is the runtime's Python (``major.minor``); every profile runs on this
    machine's interpreter, which may differ (docs/local-workspace.md). ``locked``: whether
    ``profiles/<version>.txt`` gives it a library set of its own."""

    key: str
    version: str
    spark: str
    scala: str
    lts: bool
    python: str
    locked: bool = False

    @property
    def name(self) -> str:
        lts = " LTS" if self.lts else ""
        return f"{self.version}{lts} (includes Apache Spark {self.spark}, Scala {self.scala})"


PROFILES: tuple[RuntimeProfile, ...] = (
    RuntimeProfile(
        "15.4.x-scala2.12", "15.4", "3.5.0", "2.12", lts=True, python="3.11", locked=True
    ),
    RuntimeProfile(
        "16.4.x-scala2.12", "16.4", "3.5.2", "2.12", lts=True, python="3.12", locked=True
    ),
    RuntimeProfile(
        "16.4.x-scala2.13", "16.4", "3.5.2", "2.13", lts=True, python="3.12", locked=True
    ),
    RuntimeProfile("17.3.x-scala2.13", "17.3", "4.0.0", "2.13", lts=True, python="3.12"),
    RuntimeProfile("18.0.x-scala2.13", "18.0", "4.1.0", "2.13", lts=False, python="3.12"),
)

#: the runtime of the workspace's own cluster and of clusters that name none
DEFAULT_SPARK_VERSION = "15.4.x-scala2.12"


def profile(key: str) -> RuntimeProfile | None:
    """The profile of a ``spark_version`` key, or None when this workspace has no such one."""
    return next((p for p in PROFILES if p.key == key), None)


def _number(version: str) -> tuple[int, int] | None:
    """``(major, minor)`` of ``"15.4"`` or of a key's ``"15.4.x-..."``; None when it has none."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def environment_profile(key: str) -> tuple[RuntimeProfile, str | None]:
    """The profile whose Python libraries a cluster of ``spark_version`` ``key`` runs with,
    and a note when that is not its own: a profile without a lock, or a key that is no
    profile (a runtime this workspace does not list, say ``14.3.x-scala2.12``), take the
    locked profile nearest in version (the older one on a tie), as the note says."""
    own = profile(key)
    if own is not None and own.locked:
        return own, None
    locked = [p for p in PROFILES if p.locked]
    wanted = _number(key)
    if wanted is None:
        chosen = next(p for p in locked if p.key == DEFAULT_SPARK_VERSION)
    else:
        major, minor = wanted

        def distance(p: RuntimeProfile) -> tuple[float, tuple[int, int]]:
            number = _number(p.version) or (0, 0)
            return abs((number[0] + number[1] / 100) - (major + minor / 100)), number

        chosen = min(locked, key=distance)
    what = f"runtime {own.version}" if own is not None else f"spark_version {key!r}"
    why = "has no local library set" if own is not None else "is not a runtime of this workspace"
    return chosen, (
        f"The {what} {why}: this run uses the Python libraries of {chosen.version}"
        f"{' LTS' if chosen.lts else ''} ({chosen.key})."
    )
