"""The runtime profiles the local workspace offers, keyed as Databricks keys its runtimes.

One list, here, for every place that names a runtime: ``clusters/spark-versions`` lists it,
``clusters/create`` and job clusters are checked against it, the default cluster uses
:data:`DEFAULT_SPARK_VERSION`. A profile is what a cluster of that runtime means on this
machine; today every profile runs notebooks on the server's Python and the local Spark engine,
so they differ only in name. Adding a profile (another issue gives them their own
interpreters) is adding a row.

Keys and names follow ``clusters/spark-versions`` of the service: ``<major>.<minor>.x-scala<v>``
and ``"<version>[ LTS] (includes Apache Spark <spark>, Scala <v>)"``; databricks-sdk's
``select_spark_version`` reads ``LTS`` in the name and ``-scala<v>`` in the key. Versions are
Databricks' supported runtimes: 15.4 LTS (Spark 3.5.0), 16.4 LTS (3.5.2, in a Scala 2.12 and a
Scala 2.13 image), 17.3 LTS (4.0.0, Scala 2.13 only, as from runtime 17 on) and 18.0 (4.1.0).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_SPARK_VERSION", "PROFILES", "RuntimeProfile", "profile"]


@dataclass(frozen=True)
class RuntimeProfile:
    key: str
    version: str
    spark: str
    scala: str
    lts: bool

    @property
    def name(self) -> str:
        lts = " LTS" if self.lts else ""
        return f"{self.version}{lts} (includes Apache Spark {self.spark}, Scala {self.scala})"


PROFILES: tuple[RuntimeProfile, ...] = (
    RuntimeProfile("15.4.x-scala2.12", "15.4", "3.5.0", "2.12", lts=True),
    RuntimeProfile("16.4.x-scala2.12", "16.4", "3.5.2", "2.12", lts=True),
    RuntimeProfile("16.4.x-scala2.13", "16.4", "3.5.2", "2.13", lts=True),
    RuntimeProfile("17.3.x-scala2.13", "17.3", "4.0.0", "2.13", lts=True),
    RuntimeProfile("18.0.x-scala2.13", "18.0", "4.1.0", "2.13", lts=False),
)

#: the runtime of the workspace's own cluster and of clusters that name none
DEFAULT_SPARK_VERSION = "15.4.x-scala2.12"


def profile(key: str) -> RuntimeProfile | None:
    """The profile of a ``spark_version`` key, or None when this workspace has no such one."""
    return next((p for p in PROFILES if p.key == key), None)
