"""Serving files from a folder (the widget's files, uploads): every error answer is JSON, and a
name that cannot be a file there is a 404, whatever its length or bytes."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import must_be_empty_body

from bridge.errors import NotFound, error_detail

MAX_NAME = 255  # bytes in one path component (NAME_MAX on Linux)
MAX_PATH = 1024


class _JsonErrors(web.StreamResponse):
    """Placed after ``FileResponse`` in the MRO: the 403/404/412/416 answers it makes while preparing
    (a Range it cannot satisfy, a failed If-Match) get a JSON ``detail`` instead of an empty body."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.status < 400 or self.prepared:
            return await super().prepare(request)
        content = json.dumps({"detail": error_detail(self.status, self.reason)}).encode()
        self.content_type = "application/json"
        self.content_length = len(content)
        writer = await super().prepare(request)
        if not must_be_empty_body(request.method, self.status):
            await self.write(content)
        return writer


class FileResponse(web.FileResponse, _JsonErrors):
    pass


def under(root: Path, relative: str) -> Path:
    """``root/relative`` if that is a regular file inside ``root``; else 404 (never an OSError)."""
    parts = relative.split("/")
    if (
        len(relative) > MAX_PATH
        or "\x00" in relative
        or any(
            not p or p in (".", "..") or len(p.encode("utf-8", "surrogateescape")) > MAX_NAME for p in parts
        )
    ):
        raise NotFound("no such file")
    try:
        base = root.resolve()
        path = base.joinpath(*parts).resolve()
        if not path.is_relative_to(base) or not path.is_file():
            raise NotFound("no such file")
    except (OSError, ValueError):
        raise NotFound("no such file") from None
    return path
