"""A client-credentials token from OCS's OAuth server (django-oauth-toolkit's ``POST /o/token/``),
for the Chat API's ``chat/start/``: cached until shortly before it expires, fetched again when OCS
refuses it, one fetch at a time (every conversation shares it). The secret and the token are never
logged."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote_plus

from pydantic import SecretStr

from bridge.bots.base import BotError
from bridge.bots.http import json_object

SCOPE = "chat:start"  # the only scope chat/start/ takes (OCS's CHAT_API_SCOPE)
EARLY = 60.0  # seconds before it expires that a token is fetched again
Exchange = Callable[..., Awaitable[tuple[int, bytes, Mapping[str, str]]]]

# What OCS's OAuth server's errors (RFC 6749 §5.2) mean for the bridge's settings.
ERRORS = {
    "invalid_client": "OCS does not know this OAuth client: check OCS_CLIENT_ID and OCS_CLIENT_SECRET",
    "unauthorized_client": "the OAuth application's grant type is not 'Client credentials' in OCS",
    "invalid_scope": f"the OAuth application may not have the scope {SCOPE!r} in OCS",
    "unsupported_grant_type": "OCS's OAuth server does not take client credentials",
}


class ClientToken:
    def __init__(self, url: str, client_id: str, secret: SecretStr):
        self.url = url
        self.client_id = client_id
        self._secret = secret
        self._token: str | None = None
        self._expires = 0.0  # monotonic
        self._lock = asyncio.Lock()

    async def get(self, exchange: Exchange, refused: str | None = None) -> str:
        """A valid token; with ``refused`` (a token OCS just refused), another one, unless another
        conversation already fetched it meanwhile."""
        async with self._lock:
            fresh = self._token is not None and time.monotonic() < self._expires
            if not fresh or self._token == refused:
                self._token, lifetime = await self._fetch(exchange)
                self._expires = time.monotonic() + max(lifetime - EARLY, lifetime / 2)
            assert self._token is not None
            return self._token

    async def _fetch(self, exchange: Exchange) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "scope": SCOPE}
        # RFC 6749 §2.3.1: each form-encoded, then HTTP Basic (as django-oauth-toolkit reads it)
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self._secret.get_secret_value())}"
        basic = {"Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}"}
        status, raw, _ = await exchange("POST", self.url, data=form, headers=basic)
        body = json_object(raw)
        if status == 200 and isinstance(body.get("access_token"), str):
            expires_in = body.get("expires_in")
            lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
            return body["access_token"], lifetime
        error = str(body.get("error") or "")
        if status in (429, 502, 503, 504) or status >= 500:
            raise BotError(f"OCS's OAuth server answered {status}", retryable=True, status=status)
        reason = ERRORS.get(error, f"OCS's OAuth server answered {status} {error}".strip())
        raise BotError(f"cannot get an OAuth token: {reason}", status=status)
