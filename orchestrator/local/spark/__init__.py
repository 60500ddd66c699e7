"""The Spark engine of the local workspace: one Spark Connect server per local cluster.

* :mod:`.layout`: where engines, tables and the table registry live under the state dir, and
  the ``ORCH_SPARK_*`` variables that tell a kernel where its cluster's engine is.
* :mod:`.engine`: :class:`~.engine.SparkEngines` starts and stops one engine process per
  cluster (the Clusters API drives it) and reaps engines a killed workspace left behind.
* :mod:`.engine_main`: the engine process itself (Sail's Spark Connect server).

The engine is Sail (``pysail``, in the ``orchestrator[spark]`` extra): a Spark Connect server
written in Rust, with native Delta support. Kernels connect to it through
``orchestrator.local.runtime._kernel_spark``. Nothing here imports ``pysail`` or ``pyspark``
at module level, and this ``__init__`` imports nothing.
"""

from __future__ import annotations
