"""Comparing secrets: constant time, and safe for any header value a client can send."""

from __future__ import annotations

import hmac


def matches(given: str | None, expected: str) -> bool:
    """True if ``given`` equals ``expected``, compared in constant time.

    Header values may hold bytes that are not UTF-8 (aiohttp keeps them as surrogates), so both
    sides are compared as bytes rather than as ``str`` (which ``compare_digest`` rejects unless ASCII).
    """
    if given is None:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )
