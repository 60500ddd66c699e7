"""Paging of the list endpoints: ``limit`` with ``offset`` or an opaque ``page_token``, as the
Jobs API 2.1/2.2 pages (``has_more``, ``next_page_token``, ``prev_page_token``)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, TypeVar

from orchestrator.local.api.routing import Request
from orchestrator.local.state.api_error import bad_request

__all__ = ["page"]

_Item = TypeVar("_Item")


def page(
    req: Request, items: Sequence[_Item], *, max_limit: int
) -> tuple[list[_Item], dict[str, Any]]:
    """The items of the requested page, and the answer's paging fields."""
    limit = req.integer("limit", default=20) or 20
    if not 1 <= limit <= max_limit:
        raise bad_request(f"limit must be between 1 and {max_limit}")
    offset = req.integer("offset", default=0) or 0
    token = req.text("page_token")
    if token:
        try:
            offset = int(base64.urlsafe_b64decode(token.encode()).decode())
        except ValueError:
            raise bad_request("Invalid page_token") from None
    if offset < 0:
        raise bad_request("offset must not be negative")
    links: dict[str, Any] = {"has_more": offset + limit < len(items)}
    if links["has_more"]:
        links["next_page_token"] = _token(offset + limit)
    if offset > 0:
        links["prev_page_token"] = _token(max(0, offset - limit))
    return list(items[offset : offset + limit]), links


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()
