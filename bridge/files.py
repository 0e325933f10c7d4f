"""Serving files from a folder (the widget's files, its uploads, people's files behind links):
every error answer is JSON, a name that cannot be a file there is a 404, whatever its length or
bytes, and anyone's bytes are always a download."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import must_be_empty_body

from bridge.errors import NotFound, error_detail

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
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


def safe_name(name: str) -> str:
    """A file name that is one harmless path component (never empty, never starting with a dot)."""
    cleaned = _SAFE_NAME.sub("_", Path(name).name).strip(" .")
    return cleaned[:120] or "file"


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


def download_headers(name: str, content_type: str) -> dict[str, str]:
    """Headers of a file anyone may have written, served from the bridge's origin: always a
    download, never a page (an uploaded text/html or SVG would otherwise run its scripts as the
    bridge)."""
    return {
        "Content-Type": content_type,
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
