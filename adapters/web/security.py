"""Who may call the widget API: origins (CORS), the embed key, session tokens, rate limits."""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bridge.errors import ApiError, Forbidden, Throttled
from bridge.secrets import matches

from .channel import STARTED, TOKEN_DIGEST, TOKEN_REQUIRED, AuthLevel, WebChannel
from .digest import token_digest

API_PREFIX = "/api/chat/"
ALLOW_HEADERS = "Content-Type, X-Embed-Key, X-Session-Token, X-CSRFToken, x-ocs-widget-version"
ALLOW_METHODS = "GET, POST, OPTIONS"
SESSION_TOKEN_HEADER = "X-Session-Token"
WIDGET_VERSION_HEADER = "x-ocs-widget-version"
TOKEN_WIDGETS = (0, 9, 0)  # widgets from this version on send the session token back (OCS's migration 0029)
_VERSION = re.compile(r"^(\d{1,4})\.(\d{1,4})\.(\d{1,4})")


class SessionRefused(Forbidden):
    """A 403 the widget (0.9.0 on) answers by dropping the session and starting a new one: its
    ``code`` is OCS's."""

    def __init__(self, detail: str, code: str):
        super().__init__(detail)
        self.code = code


def error_body(detail: str, code: str | None = None) -> dict[str, str]:
    """An error answer of the Chat API: OCS's ``error`` (what the widget shows) and ``code``, and the
    bridge's ``detail``."""
    body = {"detail": detail, "error": detail}
    if code is not None:
        body["code"] = code
    return body


def new_session_id() -> str:
    return secrets.token_urlsafe(24)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def widget_version(request: web.Request) -> tuple[int, ...] | None:
    """The version the official widget announces (0.5.1 on); None from anything else."""
    match = _VERSION.match(request.headers.get(WIDGET_VERSION_HEADER, ""))
    return tuple(int(n) for n in match.groups()) if match else None


def token_required(level: AuthLevel, request: web.Request) -> bool:
    """Whether a session started by this request needs its token on every call.

    A widget that carries tokens (0.9.0 on) always does, whatever the level would allow: a
    version header may only tighten (OCS's ADR-0045). So does a client that sent the header at
    start. A widget that announces an older version (0.6.0 has no code for a token) is served at
    ``embed_key`` at most; any other client (a server starting a session for a page) at the
    channel's level.
    """
    version = widget_version(request)
    if (version is not None and version >= TOKEN_WIDGETS) or SESSION_TOKEN_HEADER in request.headers:
        return True
    return version is None and level == "session_token"


def check_embed_key(channel: WebChannel, request: web.Request) -> None:
    expected = channel.options.embed_key
    if expected is None or channel.options.auth == "none":
        return
    if not matches(request.headers.get("X-Embed-Key"), expected.get_secret_value()):
        raise Forbidden("invalid or missing X-Embed-Key")


def check_session_token(
    request: web.Request, state: Mapping[str, Any], lifetime: timedelta, now: datetime
) -> None:
    """A token the client sends must match; a session that requires one needs it, unexpired
    (``lifetime`` from the session's start, however much it is used: OCS's ADR-0054)."""
    given = request.headers.get(SESSION_TOKEN_HEADER)
    required = bool(state.get(TOKEN_REQUIRED))
    if given is None:
        if required:
            raise SessionRefused("Session token required", "session_token_required")
        return
    if not matches(token_digest(given), str(state.get(TOKEN_DIGEST, ""))):
        raise SessionRefused("Invalid session token", "session_token_invalid")
    if required and not _started_after(state.get(STARTED), now - lifetime):
        raise SessionRefused("Session has expired", "session_expired")


def _started_after(started: object, limit: datetime) -> bool:
    """Whether ``started`` (as kept in the state) is after ``limit``. A session without it (one
    started before tokens expired) counts as expired: the widget starts a new one."""
    try:
        return isinstance(started, str) and datetime.fromisoformat(started) > limit
    except (ValueError, TypeError):
        return False


def check_origin(channel: WebChannel, request: web.Request) -> None:
    """A browser call from a page this channel does not allow (another widget's origin): 403."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != request_origin(request) and not channel.allows_origin(origin):
        raise Forbidden("origin not allowed")


def request_origin(request: web.Request) -> str:
    """The origin this request was addressed to (same-origin calls are always allowed)."""
    return f"{request.scheme}://{request.host}"


def client_address(request: web.Request, trust_forwarded: bool) -> str:
    """The peer's address; behind a trusted proxy, the one that proxy appended to X-Forwarded-For.

    Only the right-most entry is the proxy's own: anything left of it came from the client, who
    could otherwise pick a fresh address for every request and never be throttled.
    """
    if trust_forwarded:
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.remote or "unknown"


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (sliding window, in memory)."""

    def __init__(self, window: float = 60.0, max_keys: int = 100_000):
        self.window = window
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def hit(self, key: str, limit: int, what: str) -> None:
        now = time.monotonic()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= limit:
            retry = max(1, int(events[0] + self.window - now) + 1)
            raise Throttled(f"too many {what}; try again in {retry} s", headers={"Retry-After": str(retry)})
        events.append(now)
        if len(self._events) > self.max_keys:
            self._prune(now)

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cors_middleware(
    channels: Callable[[], Iterable[WebChannel]],
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """CORS for /api/chat/: preflights and answers for allowed origins only; others get 403."""

    def allowed(request: web.Request, origin: str) -> bool:
        if origin == request_origin(request):
            return True
        return any(channel.allows_origin(origin) for channel in channels())

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        origin = request.headers.get("Origin")
        if origin is not None and not allowed(request, origin):
            return web.json_response(error_body("origin not allowed"), status=403)
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
        else:
            try:
                response = await handler(request)
            except ApiError as exc:
                body = error_body(exc.detail, getattr(exc, "code", None))
                response = web.json_response(body, status=exc.status, headers=exc.headers)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = web.json_response(error_body(exc.reason), status=exc.status)
        _cors_headers(response.headers, origin)
        return response

    return middleware


def _cors_headers(headers: MutableMapping[str, str], origin: str | None) -> None:
    if origin is None:
        return
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    headers["Access-Control-Max-Age"] = "600"
    headers["Vary"] = "Origin"
