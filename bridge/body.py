"""Reading request bodies: the one place that turns an unreadable or malformed body into a clear 4xx."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bridge.errors import BadRequest, UnsupportedMediaType

# A body aiohttp cannot decode (a Content-Encoding that is not what it says, a truncated stream,
# broken chunked framing) fails while it is being read, with one of these.
UNREADABLE = (web.RequestPayloadError, HttpProcessingError)


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """Around any read of the request's body (``read()``, ``multipart()``): undecodable is a 400."""
    try:
        yield
    except UNREADABLE:
        raise BadRequest("the body could not be read (check Content-Encoding and framing)") from None


async def read(request: web.Request) -> bytes:
    """The whole body, decoded; 400 if it cannot be, 413 beyond the app's ``client_max_size``."""
    with reading():
        return await request.read()


async def form(request: web.Request) -> dict[str, str]:
    """An HTML form's fields (``application/x-www-form-urlencoded``, UTF-8; none if the body is
    empty); 415 or 400 otherwise."""
    raw = await read(request)
    if not raw:
        return {}
    if request.content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("send a form (Content-Type: application/x-www-form-urlencoded)")
    try:
        return dict(
            parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=100, errors="strict")
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form could not be read (UTF-8, at most 100 fields)") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or 415 (not JSON) / 400 (malformed, not an object)."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send JSON (Content-Type: application/json)")
    raw = await read(request)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("malformed JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def query_count(value: str, high: int) -> int | None:
    """A query's whole number from 1 to ``high`` in plain ASCII digits ("²", "+5", thousands of
    digits are not), or None."""
    if value.isascii() and value.isdigit() and len(value) <= len(str(high)) and 1 <= int(value) <= high:
        return int(value)
    return None
