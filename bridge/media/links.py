"""People's files as named links for a bot that reads text only: ``PUBLIC_URL/media/<token>/<name>``,
working for ``MEDIA_LINK_HOURS`` after the file was fetched, always served as a download."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from aiohttp import web

from bridge.errors import NotFound
from bridge.files import FileResponse, download_headers, under
from bridge.media.store import Stored, media_store
from bridge.typedefs import CORE

ROUTE = "/media/{token}/{name}"


def now() -> datetime:
    """The links' clock (a test moves it on)."""
    return datetime.now(UTC)


def with_links(text: str, base_url: str, files: Sequence[Stored]) -> str:
    """The caption, then one named link per file."""
    links = "\n".join(f"[{f.file.name}]({base_url}/media/{f.token}/{quote(f.file.name)})" for f in files)
    return f"{text}\n\n{links}".strip()


async def serve(request: web.Request) -> web.FileResponse:
    """``GET /media/{token}/{name}``: the file, until its link expires (then 404, as unknown)."""
    settings = request.app[CORE].settings
    store = media_store(settings.data_dir)
    found = store.find(request.match_info["token"])
    name = request.match_info["name"]
    if found is None or found.file.name != name:
        raise NotFound("unknown file")
    if now() >= found.stored_at + timedelta(hours=settings.media_link_hours):
        raise NotFound("unknown file")
    headers = download_headers(name, found.file.content_type)
    return FileResponse(under(store.root, f"{found.token}/{name}"), headers=headers)
