"""Admin endpoints of the local workspace, under ``/local-admin/`` (not part of Databricks' API).

- ``GET /local-admin/counters``: requests per endpoint, total, faults injected.
- ``POST /local-admin/counters/reset``.
- ``GET /local-admin/faults`` and ``POST /local-admin/faults`` (a full FaultSettings object).

They need the same bearer token as the API.
"""

from __future__ import annotations

from orchestrator.local.api.routing import Request, Response, Router
from orchestrator.local.server.faults import Faults, FaultSettings
from orchestrator.local.state.api_error import bad_request

__all__ = ["ADMIN_PREFIX", "Admin"]

ADMIN_PREFIX = "/local-admin"


class Admin:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    def register(self, router: Router) -> None:
        router.plain("GET", ADMIN_PREFIX + "/counters", self.counters)
        router.plain("POST", ADMIN_PREFIX + "/counters/reset", self.reset)
        router.plain("GET", ADMIN_PREFIX + "/faults", self.get_faults)
        router.plain("POST", ADMIN_PREFIX + "/faults", self.set_faults)

    def counters(self, req: Request) -> Response:
        return Response.json(self.faults.snapshot())

    def reset(self, req: Request) -> Response:
        self.faults.reset_counts()
        return Response.json({})

    def get_faults(self, req: Request) -> Response:
        return Response.json(self.faults.settings.to_dict())

    def set_faults(self, req: Request) -> Response:
        try:
            settings = FaultSettings.from_dict(req.params)
        except (TypeError, ValueError) as exc:
            raise bad_request(str(exc)) from None
        self.faults.configure(settings)
        return Response.json(settings.to_dict())
