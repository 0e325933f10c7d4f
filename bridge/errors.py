"""Errors that become JSON answers with a status and a short ``detail``."""

from __future__ import annotations


class ApiError(Exception):
    """An HTTP error answer: ``{"detail": ...}`` with ``status``."""

    status = 400

    def __init__(self, detail: str, status: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class TooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class Throttled(ApiError):
    status = 429


class Unstorable(ValueError):
    """Input the store cannot keep (an id empty once cleaned, or too long): the caller's 400."""


_DETAILS = {
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    417: "Only 'Expect: 100-continue' is supported.",
}


def error_detail(status: int, reason: str | None) -> str:
    """The ``detail`` of an error answer aiohttp decided on (no route, a method not allowed, ...)."""
    return _DETAILS.get(status, reason or "Error.")


class ConfigError(Exception):
    """Bad or missing settings: one line each, naming the setting, never its value."""
