"""Code that runs inside a notebook's kernel (and the kernel fork server), never on the host.

Everything here is loaded into user kernels: the standard library only at module level, and
nothing from the rest of the package (the contracts in ``pyproject.toml`` enforce it), so a
kernel imports no more than it needs and the host side may import from here, never the other
way round. The modules import each other relatively.

* :mod:`.dbutils`: the entry point, ``install(get_ipython())``: ``dbutils``, ``display``,
  ``spark``... in the user namespace; the utilities live in :mod:`.fs_util`,
  :mod:`.secrets_util`, :mod:`.widgets_util`, :mod:`.notebook_util` and :mod:`.library_util`,
  sharing :mod:`.common` (errors, the run's configuration).
* :mod:`.path_mapping`: ``/Workspace/...`` and ``/dbfs/...`` through ordinary file APIs.
* :mod:`.display`, :mod:`.child_view`: what cells show (a child run's link among it).
* :mod:`.spark_session`, :mod:`.spark_catalog`: ``spark`` on the cluster's engine.
* :mod:`.shell_magics`: ``%sh``, ``!cmd`` and ``%pip`` inside the kernel.
* :mod:`.zygote_main`: the fork server that Python kernels are forked from.
* ``r/``: the same for R kernels (``dbutils.R``, ``spark.R``), sourced by the executor.
"""
