"""A file's content type from its first bytes, never from what the platform or the person said."""

from __future__ import annotations

import filetype  # magic numbers of images, audio, video, documents and archives; no dependencies

HEAD = 8192  # bytes enough for every signature ``filetype`` knows
OCTETS = "application/octet-stream"


def sniff(head: bytes) -> tuple[str, str]:
    """(content type, extension with its dot) of a file starting with ``head``."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime, f".{kind.extension}"
    if head and _is_text(head):
        return "text/plain", ".txt"
    return OCTETS, ""


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the end of the head is still text
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True
