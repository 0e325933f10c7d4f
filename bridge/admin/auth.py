"""Logging in to the operator's page: the key once (a form), then a signed session cookie.

The cookie (``HttpOnly``, ``SameSite=Strict``, ``Secure`` behind HTTPS, path ``/admin``) holds an
expiry and a random nonce, signed with a key derived from ``ADMIN_API_KEY``: changing the key logs
everyone out. Every POST form carries a CSRF token derived from the session's nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from aiohttp import web

from bridge.secrets import matches
from bridge.settings import Settings

COOKIE = "bridge_admin"
SESSION_SECONDS = 8 * 3600
CSRF_FIELD = "csrf"


class Session:
    """A logged-in operator (a valid cookie): its CSRF token."""

    def __init__(self, nonce: str, signing: bytes):
        self.csrf = _sign(signing, f"csrf:{nonce}")


def _signing_key(settings: Settings) -> bytes:
    assert settings.admin_api_key is not None
    key = settings.admin_api_key.get_secret_value().encode()
    return hmac.new(key, b"bridge admin session", hashlib.sha256).digest()


def _sign(signing: bytes, value: str) -> str:
    return hmac.new(signing, value.encode(), hashlib.sha256).hexdigest()


def key_matches(settings: Settings, given: str) -> bool:
    assert settings.admin_api_key is not None
    return matches(given, settings.admin_api_key.get_secret_value())


def session(request: web.Request, settings: Settings) -> Session | None:
    """The operator's session if the request carries a valid, unexpired cookie."""
    value = request.cookies.get(COOKIE, "")
    expires, _, rest = value.partition(".")
    nonce, _, signature = rest.partition(".")
    signing = _signing_key(settings)
    if not expires.isdigit() or not matches(signature, _sign(signing, f"{expires}.{nonce}")):
        return None
    if int(expires) < time.time():
        return None
    return Session(nonce, signing)


def log_in(response: web.StreamResponse, settings: Settings) -> None:
    """Give the response a new session cookie."""
    expires, nonce = str(int(time.time()) + SESSION_SECONDS), secrets.token_urlsafe(16)
    signature = _sign(_signing_key(settings), f"{expires}.{nonce}")
    response.set_cookie(
        COOKIE,
        f"{expires}.{nonce}.{signature}",
        max_age=SESSION_SECONDS,
        path="/admin",
        httponly=True,
        samesite="Strict",
        secure=settings.base_url.startswith("https://"),
    )


def log_out(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/admin")


def csrf_ok(current: Session, given: object) -> bool:
    return isinstance(given, str) and matches(given, current.csrf)
