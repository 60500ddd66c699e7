"""Databricks-style API errors raised by the local workspace's handlers.

Handlers raise :class:`ApiError`; the HTTP layer turns it into
``{"error_code": ..., "message": ...}`` with the matching HTTP status, as the service does.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "already_exists",
    "bad_request",
    "invalid_state",
    "not_found",
]


class ApiError(Exception):
    """An error answer: HTTP status, Databricks ``error_code`` and a message."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def already_exists(message: str) -> ApiError:
    return ApiError(400, "RESOURCE_ALREADY_EXISTS", message)


def invalid_state(message: str) -> ApiError:
    return ApiError(400, "INVALID_STATE", message)
