"""Spoken answers on the bridge's disk (``DATA_DIR/voice``), served to the platform that fetches
them (Telegram's sendVoice by URL, WhatsApp media) at ``/voice/{token}.ogg``: the token is random
(not guessable from anything logged) and a file is gone after ``KEEP``."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from aiohttp import web

from bridge.typedefs import CORE

FOLDER = "voice"
KEEP = 48 * 3600.0  # seconds: time enough for a part's retries, not a store of people's answers
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}


def save(data_dir: Path, audio: bytes) -> str:
    """Keep ``audio`` (OGG/Opus) under a new token; its token. Expired files are swept first."""
    folder = data_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    sweep(folder, time.time() - KEEP)
    token = secrets.token_urlsafe(24)
    temporary = folder / f".{token}.part"
    temporary.write_bytes(audio)
    os.replace(temporary, folder / f"{token}.ogg")  # complete, or not there at all
    return token


def sweep(folder: Path, before: float) -> int:
    """Delete the files written before ``before`` (a timestamp); how many."""
    removed = 0
    for path in folder.glob("*.ogg"):
        try:
            if path.stat().st_mtime < before:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another process swept it
            continue
    return removed


def find(data_dir: Path, token: str) -> Path | None:
    """The file of a token that is well-formed, known and not expired."""
    if not _TOKEN.match(token):
        return None
    path = data_dir / FOLDER / f"{token}.ogg"
    try:
        fresh = path.stat().st_mtime >= time.time() - KEEP
    except FileNotFoundError:
        return None
    return path if fresh else None


async def serve(request: web.Request) -> web.StreamResponse:
    """``GET /voice/{token}.ogg``: the spoken answer, or 404 (unknown or expired)."""
    data_dir = Path(request.app[CORE].settings.data_dir)
    path = find(data_dir, request.match_info["token"])
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={**HEADERS, "Content-Type": "audio/ogg"})


def install(app: web.Application) -> None:
    app.router.add_get("/voice/{token}.ogg", serve)
