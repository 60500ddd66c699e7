"""The databricks-sdk client of the adapter, imported without the SDK's 40 other services.

``import databricks.sdk`` runs the package's ``__init__``, which imports every service module
of the SDK (about 2.5 s on a 2-core CI agent, most of a local build's start-up) to define
``WorkspaceClient``. The adapter uses four things of it: the ``Config``, one ``ApiClient``, and
the Jobs, Workspace and Clusters APIs (the SDK's own ``JobsExt``, ``WorkspaceExt`` and
``ClustersExt``). :func:`new_client` builds exactly those, the way ``WorkspaceClient`` does
(the config copied, one API client), from their own modules: 0.7 s.

For that, :func:`lean_import` registers the ``databricks.sdk`` package without running its
``__init__`` (submodules import as usual); the first use of a name the ``__init__`` defines
(``from databricks.sdk import WorkspaceClient``, anywhere in the process) runs it then, once,
so every other user of the SDK sees the whole package. Nothing changes when the package was
imported already.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.adapters.databricks.plain_post import PlainPost, plain_post_for

if TYPE_CHECKING:
    from databricks.sdk.config import Config
    from databricks.sdk.core import ApiClient
    from databricks.sdk.mixins.compute import ClustersExt
    from databricks.sdk.mixins.jobs import JobsExt
    from databricks.sdk.mixins.workspace import WorkspaceExt

__all__ = ["SdkClient", "lean_import", "new_client"]

_PACKAGE = "databricks.sdk"
_LOCK = threading.RLock()


class SdkClient(Protocol):
    """What the adapter uses of a ``WorkspaceClient`` (which has all of it too)."""

    @property
    def config(self) -> Config: ...

    @property
    def api_client(self) -> ApiClient: ...

    @property
    def jobs(self) -> JobsExt: ...

    @property
    def workspace(self) -> WorkspaceExt: ...

    @property
    def clusters(self) -> ClustersExt: ...


class _Client:
    """The four APIs of a ``WorkspaceClient`` the adapter uses, built the same way."""

    def __init__(self, config: Config) -> None:
        from databricks.sdk.core import ApiClient
        from databricks.sdk.mixins.compute import ClustersExt
        from databricks.sdk.mixins.jobs import JobsExt
        from databricks.sdk.mixins.workspace import WorkspaceExt

        self._config: Config = config.copy()  # type: ignore[no-untyped-call]
        self._api_client = ApiClient(self._config)
        # the SDK mounts its sized, blocking connection pool for https:// only; a workspace on
        # this machine (http://127.0.0.1) would get requests' default pool of 10, which a
        # 16-way deploy overflows ("Connection pool is full, discarding connection")
        session = getattr(getattr(self._api_client, "_api_client", None), "_session", None)
        #: one-try POSTs for bulk idempotent calls, beside the SDK (see .plain_post)
        self.plain: PlainPost | None = None
        if session is not None:
            session.mount("http://", session.get_adapter("https://"))
            _read_environment_once(session, self._config.host or "")
            pool_size = int(self._config.max_connections_per_pool or 20)
            self.plain = plain_post_for(self._config, session, pool_size=pool_size)
        # the SDK's generated constructors carry no annotations
        self._jobs = JobsExt(self._api_client)  # type: ignore[no-untyped-call]
        self._workspace = WorkspaceExt(self._api_client)  # type: ignore[no-untyped-call]
        self._clusters = ClustersExt(self._api_client)  # type: ignore[no-untyped-call]

    @property
    def config(self) -> Config:
        return self._config

    @property
    def api_client(self) -> ApiClient:
        return self._api_client

    @property
    def jobs(self) -> JobsExt:
        return self._jobs

    @property
    def workspace(self) -> WorkspaceExt:
        return self._workspace

    @property
    def clusters(self) -> ClustersExt:
        return self._clusters


def _read_environment_once(session: Any, url: str) -> None:
    """Read the proxy and CA bundle variables for the workspace once, not on every request.

    With ``trust_env`` on, ``requests`` walks the whole process environment for the proxy
    variables (``get_environ_proxies``, twice per request): a fifth of a request's CPU here,
    which a 16-way cleanup or deploy on two cores pays in wall time. The client talks to one
    host, and the environment does not change under a running build, so its answer is read
    once and kept on the session (netrc, the other thing ``trust_env`` reads, is never
    consulted: the SDK's session always has its own ``auth``)."""
    settings = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies.update(settings["proxies"])
    if settings["verify"] not in (None, True):
        session.verify = settings["verify"]
    session.trust_env = False


def lean_import() -> None:
    """Register ``databricks.sdk`` without running its ``__init__`` (see the module doc)."""
    with _LOCK:
        if _PACKAGE in sys.modules:
            return
        spec = importlib.util.find_spec(_PACKAGE)
        if spec is None or spec.loader is None:
            return  # not installed: the import that needs it reports it
        package = importlib.util.module_from_spec(spec)
        loader = spec.loader

        def __getattr__(name: str) -> Any:
            if importlib.util.find_spec(f"{_PACKAGE}.{name}") is not None:
                return importlib.import_module(f"{_PACKAGE}.{name}")  # a submodule
            with _LOCK:
                if package.__dict__.pop("__getattr__", None) is not None:
                    loader.exec_module(package)  # the whole package, once
            try:
                return package.__dict__[name]
            except KeyError:
                raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}") from None

        setattr(package, "__getattr__", __getattr__)  # noqa: B010 - a module, not a class
        sys.modules[_PACKAGE] = package
        parent = sys.modules.get("databricks")
        if isinstance(parent, types.ModuleType):
            parent.sdk = package  # type: ignore[attr-defined]


def new_client(config: Config) -> SdkClient:
    """The adapter's client for ``config`` (import ``Config`` after :func:`lean_import`)."""
    return _Client(config)
