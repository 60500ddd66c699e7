"""Clusters API 2.0/2.1 of the local workspace, over
:class:`~orchestrator.local.runtime.clusters.Clusters`."""

from __future__ import annotations

from typing import Any

from orchestrator.local.api.routing import Request, Router
from orchestrator.local.runtime.clusters import Clusters

__all__ = ["ClustersApi"]


class ClustersApi:
    def __init__(self, clusters: Clusters) -> None:
        self.clusters = clusters

    def register(self, router: Router) -> None:
        versions = ("2.0", "2.1")
        router.api("GET", "clusters/get", versions, self.get)
        router.api("GET", "clusters/list", versions, self.list)
        router.api("POST", "clusters/start", versions, self.start)
        router.api("POST", "clusters/delete", versions, self.delete)

    def get(self, req: Request) -> dict[str, Any]:
        return self.clusters.info(req.required_text("cluster_id"))

    def list(self, req: Request) -> dict[str, Any]:
        return {"clusters": self.clusters.infos()}

    def start(self, req: Request) -> dict[str, Any]:
        self.clusters.request_start(req.required_text("cluster_id"))
        return {}

    def delete(self, req: Request) -> dict[str, Any]:
        self.clusters.terminate(req.required_text("cluster_id"))
        return {}
