"""The one-way digest the web channel keeps of session tokens (and of the session owning an upload)."""

from __future__ import annotations

import hashlib


def token_digest(token: str) -> str:
    """What the store keeps: the token itself never rests in the database.

    A header value may hold bytes that are not UTF-8 (aiohttp keeps them as surrogates): hashed as sent.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
