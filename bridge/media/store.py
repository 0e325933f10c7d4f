"""People's files on the bridge's disk, one folder each: ``DATA_DIR/media/<token>/<name>``, with
what is known of it in ``.meta.json``.

The token names one file of one message: an HMAC of (channel, message id, file index) under a
random key kept beside the files (``.key``). It is the same on every attempt at the message (a
retry finds the file already there, and links the same URL), and unguessable without the key (it
is not the message id, which is logged). A download goes to ``.tmp/`` first: a folder under its
token is complete."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from bridge.channel import Channel
from bridge.files import safe_name
from bridge.media.download import FileTooLarge
from bridge.media.sniff import HEAD, sniff
from bridge.model import LocalFile, Media

META = ".meta.json"
KEY = ".key"
TMP = ".tmp"
MAX_BYTES = 50_000_000  # a file's size at most (OCS takes files of up to 50 MB)
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")


@dataclass(frozen=True, slots=True)
class Stored:
    """A fetched file, the token that names it, and when it was fetched."""

    token: str
    file: LocalFile
    stored_at: datetime


@functools.cache
def media_store(data_dir: str) -> MediaStore:
    """The store under ``DATA_DIR`` (one per process: its key is read once)."""
    return MediaStore(Path(data_dir) / "media")


def person_digest(channel: str, person_key: str) -> str:
    """Who a file belongs to, as its meta says it (an erase finds their files by it)."""
    return hashlib.sha256(f"{channel}\0{person_key}".encode()).hexdigest()[:32]


class MediaStore:
    def __init__(self, root: Path):
        self.root = root
        self._key: bytes | None = None

    def token(self, channel: str, message_id: int, index: int) -> str:
        digest = hmac.new(self._secret(), f"{channel}\0{message_id}\0{index}".encode(), "sha256").digest()
        return base64.urlsafe_b64encode(digest).decode()[:32]

    async def fetch(
        self, channel: Channel, person_key: str, message_id: int, index: int, media: Media
    ) -> Stored:
        """The message's ``index``-th file on disk: downloaded through ``channel`` unless an earlier
        attempt did. Raises the channel's ``SendError`` (``FileTooLarge`` past ``MAX_BYTES``)."""
        token = self.token(channel.name, message_id, index)
        found = self.find(token)
        if found is not None:
            return found
        folder = self.root / TMP / secrets.token_hex(8)
        folder.mkdir(parents=True)
        try:
            size, head = await _download(channel, media, folder / "data")
            content_type, extension = sniff(head)
            name = safe_name(media.name) if media.name else f"{media.kind}{extension}"
            (folder / "data").rename(folder / name)
            meta = {
                "name": name,
                "content_type": content_type,
                "size": size,
                "person": person_digest(channel.name, person_key),
                "stored_at": datetime.now(UTC).isoformat(),
            }
            (folder / META).write_text(json.dumps(meta), encoding="utf-8")
            with contextlib.suppress(OSError):  # already there: another attempt finished first
                folder.rename(self.root / token)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        found = self.find(token)
        if found is None:
            raise OSError("the fetched file could not be stored")
        return found

    def find(self, token: str) -> Stored | None:
        if not _TOKEN.match(token):
            return None
        try:
            meta = json.loads((self.root / token / META).read_text(encoding="utf-8"))
            file = LocalFile(
                self.root / token / meta["name"], meta["name"], meta["content_type"], meta["size"]
            )
            return Stored(token, file, datetime.fromisoformat(meta["stored_at"]))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def remove(self, *, person: str | None = None, before: datetime | None = None) -> int:
        """Delete one person's files (``person_digest``), or those fetched before ``before``
        (and downloads left unfinished since); how many."""
        removed = 0
        for folder in self._folders():
            try:
                meta = json.loads((folder / META).read_text(encoding="utf-8"))
                stored_at = datetime.fromisoformat(meta["stored_at"])
            except (OSError, ValueError, TypeError, KeyError):
                continue  # not a file of ours
            if (person is not None and meta.get("person") == person) or (before and stored_at < before):
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        if before is not None and (self.root / TMP).is_dir():
            for folder in (self.root / TMP).iterdir():
                if datetime.fromtimestamp(folder.stat().st_mtime, UTC) < before:
                    shutil.rmtree(folder, ignore_errors=True)
        return removed

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if _TOKEN.match(p.name) and p.is_dir()]

    def _secret(self) -> bytes:
        """The key of the tokens: made once (atomically, for every process sharing DATA_DIR)."""
        if self._key is None:
            path = self.root / KEY
            if not path.exists():
                self.root.mkdir(parents=True, exist_ok=True)
                draft = self.root / f"{KEY}.{secrets.token_hex(8)}"
                draft.write_bytes(secrets.token_bytes(32))
                draft.chmod(0o600)
                with contextlib.suppress(FileExistsError):  # another process made it first
                    os.link(draft, path)
                draft.unlink()
            self._key = path.read_bytes()
        return self._key


async def _download(channel: Channel, media: Media, path: Path) -> tuple[int, bytes]:
    """Stream the file to ``path``: its size and first bytes (to sniff its type)."""
    size, head = 0, b""
    chunks = cast(AsyncGenerator[bytes, None], channel.fetch(media, MAX_BYTES))  # closed when stopped early
    with path.open("wb") as out:
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                size += len(chunk)
                if size > MAX_BYTES:  # whatever the channel checked
                    raise FileTooLarge(MAX_BYTES)
                head += chunk[: HEAD - len(head)]
                out.write(chunk)
    return size, head
