"""Reading request bodies: one place that turns bad JSON into a clear 4xx."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bridge.errors import BadRequest, UnsupportedMediaType


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or 415 (not JSON) / 400 (malformed, not an object)."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send JSON (Content-Type: application/json)")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("malformed JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
