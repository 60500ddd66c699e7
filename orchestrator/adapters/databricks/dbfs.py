"""Files into DBFS through the DBFS API (``/api/2.0/dbfs``), for the local workspace's seed data
(``local.dbfs``): ``put`` for up to 1 MB, else ``create``, ``add-block`` (1 MB of data each,
base64) and ``close``, as the API reference says."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from orchestrator.adapters.databricks.sdk_errors import sdk_errors
from orchestrator.errors import InfrastructureError

if TYPE_CHECKING:
    from orchestrator.adapters.databricks.client import SdkClient

__all__ = ["put_file"]

_DBFS = "/api/2.0/dbfs"
_BLOCK = 1024 * 1024


def put_file(client: SdkClient, path: str, data: bytes) -> None:
    """``data`` at DBFS ``path``, overwriting it."""
    api = client.api_client
    with sdk_errors(f"writing dbfs:{path}"):
        if len(data) <= _BLOCK:
            body = {"path": path, "contents": base64.b64encode(data).decode(), "overwrite": True}
            api.do("POST", f"{_DBFS}/put", body=body)
            return
        answer = api.do("POST", f"{_DBFS}/create", body={"path": path, "overwrite": True})
        handle = answer.get("handle") if isinstance(answer, dict) else None
        if not isinstance(handle, int):
            raise InfrastructureError(f"dbfs create of {path} returned no handle")
        for start in range(0, len(data), _BLOCK):
            block = base64.b64encode(data[start : start + _BLOCK]).decode()
            api.do("POST", f"{_DBFS}/add-block", body={"handle": handle, "data": block})
        api.do("POST", f"{_DBFS}/close", body={"handle": handle})
