"""The local Databricks-compatible workspace: the Workspace, Jobs, Clusters, DBFS and Secrets
REST APIs over HTTP, and notebook tasks executed in Jupyter kernels on this machine.

The rooms, in the order a request goes through them (each imports only the rooms after it):

* :mod:`.server`: the assembly (:class:`~.server.workspace.LocalWorkspace`,
  :func:`~.server.workspace.start_local_workspace`), the HTTP listener, fault injection and
  the ``/local-admin`` endpoints;
* :mod:`.ui`: the read-only Jobs UI pages;
* :mod:`.api`: one module per REST API, and the request, response and routing types;
* :mod:`.jobs`: run documents, the scheduler, task execution;
* :mod:`.runtime`: what runs notebooks on this host: kernels, the pool, the executor,
  libraries, clusters and their Spark engines, process lifetime;
* :mod:`.state`: the store, retention, the documented limits and notebook formats;
* :mod:`.kernel`: the code that runs inside kernels, importing nothing from the rest.

This ``__init__`` imports nothing: every kernel imports :mod:`.kernel` through it. The rest of
the package reaches the workspace only through ``orchestrator.services``.
"""
