"""What runs notebooks on this host (the kernel side is :mod:`orchestrator.local.kernel`).

* :mod:`.executor` runs one notebook task in a Jupyter kernel (:mod:`.execution`: its request
  and result; :mod:`.resolver`: notebooks by workspace path; :mod:`.cell_commands`: what a
  cell asks for; :mod:`.outputs`: what it printed; :mod:`.children`: the child runs of
  ``dbutils.notebook.run``, recorded as runs through the jobs engine's ``ChildRunRecorder``
  (``ExecutionRequest.child_runs``); :mod:`.libraries`: a task's libraries).
* Notebook-scoped installs: :mod:`.run_env` (the run's environment, and the variables that
  keep a stray pip in it), :mod:`.installs` (``%pip``, task libraries and serverless
  environments, with uv), :mod:`.env_cache` (environments built per resolution, reused,
  bounded) and :mod:`.pip_main` (the installer a kernel's ``%pip`` runs).
* Kernels: :mod:`.launch` (command line, environment, bootstrap), :mod:`.kernel_process` (one
  kernel process), :mod:`.pool` (warm kernels), :mod:`.forks` and :mod:`.zygote` (Python
  kernels forked from a warm process).
* Clusters: :mod:`.clusters` (their life cycle) and their Spark engines
  (:mod:`.spark_engines`, :mod:`.spark_engine_main`, :mod:`.spark_locations`).
* :mod:`.lifetime` and :mod:`.watchdog`: no process outlives the workspace.

This ``__init__`` imports nothing.
"""
