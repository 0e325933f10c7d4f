"""Files people attach in the widget (only when ``uploads_enabled``): kept on disk. A message
names its uploads (``attachment_ids``); the worker reads them from here (``read``) like any
person's file, to give them to the bot or to link them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import BodyPartReader, web

from bridge import body
from bridge.channel import SendError
from bridge.errors import BadRequest, NotFound, TooLarge, UnsupportedMediaType
from bridge.files import safe_name
from bridge.media.download import CHUNK, FileTooLarge

from .digest import token_digest

_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$")  # sent back in a header
META = ".meta.json"  # safe_name never starts with a dot: no upload can overwrite it


@dataclass(frozen=True)
class Upload:
    id: str
    name: str
    size: int
    content_type: str
    session: str  # digest of the session id the file belongs to

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "size": self.size, "content_type": self.content_type}


MAX_FILES = 10  # files in one upload request (the widget sends the ones picked at once)
FRAMING = 64 * 1024  # allowance for the multipart framing and the widget's small form fields


async def receive(
    request: web.Request, root: Path, session_id: str, max_bytes: int, max_body: int
) -> list[Upload]:
    """Store every ``files`` field of a multipart body; 415 if not multipart, 413 if too big.

    At most ``MAX_FILES`` files of ``max_bytes`` each, and a body of at most ``max_body`` bytes
    (the app's ``client_max_size``): the body is streamed to disk, so nothing else bounds it. A
    rejected request leaves no file behind.
    """
    if not request.content_type.startswith("multipart/"):
        raise UnsupportedMediaType("upload files as multipart/form-data")
    limit = min(max_bytes * MAX_FILES + FRAMING, max_body)
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"an upload may be at most {limit} bytes")
    uploads: list[Upload] = []
    try:
        with body.reading(), _malformed_is_400():
            await _receive_fields(request, root, session_id, max_bytes, limit, uploads)
    except BaseException:
        for upload in uploads:
            _remove(root / upload.id)
        raise
    if not uploads:
        raise BadRequest("no files provided (multipart field 'files')")
    return uploads


@contextlib.contextmanager
def _malformed_is_400() -> Iterator[None]:
    """aiohttp's multipart reader says "malformed" in many ways: a missing, too long or absent
    boundary, bad part headers, a body that ends early or is not multipart at all."""
    try:
        yield
    except (ValueError, LookupError, EOFError):
        raise BadRequest("malformed multipart/form-data body") from None


async def _receive_fields(
    request: web.Request, root: Path, session_id: str, max_bytes: int, limit: int, uploads: list[Upload]
) -> None:
    reader = await request.multipart()
    async for field in reader:
        if not isinstance(field, BodyPartReader):
            raise BadRequest("nested multipart bodies are not supported")
        if field.name != "files" or not field.filename:
            while await field.read_chunk():
                _check_total(request, limit)
            continue
        if len(uploads) == MAX_FILES:
            raise TooLarge(f"at most {MAX_FILES} files may be uploaded at once")
        uploads.append(await _store(field, root, session_id, max_bytes, lambda: _check_total(request, limit)))


def _check_total(request: web.Request, limit: int) -> None:
    if request.content.total_bytes > limit:
        raise TooLarge(f"an upload may be at most {limit} bytes")


async def _store(
    field: BodyPartReader, root: Path, session_id: str, max_bytes: int, check_total: Callable[[], None]
) -> Upload:
    file_id = secrets.token_urlsafe(16)
    folder = root / file_id
    folder.mkdir(parents=True)
    name = safe_name(field.filename or "")
    size = 0
    try:
        with (folder / name).open("wb") as out:
            while chunk := await field.read_chunk():
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"a file may be at most {max_bytes} bytes")
                check_total()
                out.write(chunk)
        declared = field.headers.get("Content-Type", "")
        content_type = declared if _MEDIA_TYPE.match(declared) else "application/octet-stream"
        upload = Upload(file_id, name, size, content_type, token_digest(session_id))
        (folder / META).write_text(json.dumps(asdict(upload)), encoding="utf-8")
    except BaseException:  # too big, or the client went away mid-file: no partial file stays
        _remove(folder)
        raise
    return upload


def find(root: Path, file_id: str) -> Upload:
    if not _ID.match(file_id):
        raise NotFound("unknown file")
    try:
        return Upload(**json.loads((root / file_id / META).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        raise NotFound("unknown file") from None


async def read(root: Path, file_id: str, limit: int) -> AsyncIterator[bytes]:
    """An upload's bytes (``FileTooLarge`` past ``limit``; a final ``SendError`` once it is gone)."""
    try:
        found = find(root, file_id)
        handle = (root / found.id / found.name).open("rb")
    except (NotFound, OSError):
        raise SendError("the uploaded file is gone", final=True) from None
    with handle:
        size = 0
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            size += len(chunk)
            if size > limit:
                raise FileTooLarge(limit)
            yield chunk


def owned(root: Path, file_ids: object, session_id: str) -> list[Upload]:
    """The uploads a message refers to; 400 unless each belongs to this session."""
    if not isinstance(file_ids, list) or not all(isinstance(i, str | int) for i in file_ids):
        raise BadRequest("'attachment_ids' must be a list of file ids")
    try:
        uploads = [find(root, str(i)) for i in file_ids]
    except NotFound:
        raise BadRequest("one or more file ids are invalid") from None
    if any(u.session != token_digest(session_id) for u in uploads):
        raise BadRequest("one or more file ids are invalid")
    return uploads


def _remove(folder: Path) -> None:
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def remove(root: Path, *, session_id: str | None, before: datetime | None) -> int:
    """Delete the uploads of one widget session, or those stored before ``before``; how many."""
    if not root.is_dir():
        return 0
    digest = token_digest(session_id) if session_id is not None else None
    removed = 0
    for folder in root.iterdir():
        meta = folder / META
        try:
            owner = json.loads(meta.read_text(encoding="utf-8")).get("session")
            stored = datetime.fromtimestamp(meta.stat().st_mtime, UTC)
        except (OSError, ValueError, AttributeError):
            continue  # not an upload (or one being written)
        if (digest is not None and owner == digest) or (before is not None and stored < before):
            _remove(folder)
            removed += 1
    return removed
