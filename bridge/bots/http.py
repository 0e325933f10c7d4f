"""What the HTTP bot backends share: a connection pool that follows ``max_in_flight``, and one
request whose failures become ``BotError`` classified for retrying."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bridge.bots.base import Bot, BotError, SessionGone
from bridge.settings import BotSettings

RETRYABLE_STATUS = {429, 502, 503, 504}
CLOCK_SKEW = timedelta(seconds=5)  # between the bridge's clock and the bot's
TITLE = re.compile(r"<title>([^<]*)</title>", re.IGNORECASE)
SPARE_CONNECTIONS = 8  # beside the answers in flight: session reads, checks


class HttpBot(Bot):
    service = "the bot"  # how errors name the backend

    def __init__(self, settings: BotSettings):
        self.base = settings.base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
        )
        self._connections = settings.max_in_flight + SPARE_CONNECTIONS
        self._http: aiohttp.ClientSession | None = None

    def headers(self) -> dict[str, str]:
        """Headers of every request (the credentials)."""
        return {"Accept": "application/json"}

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(
            # The pool follows the bot's in-flight bound (aiohttp's default of 100 would cap it).
            connector=aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections),
            timeout=self._timeout,
            headers=self.headers(),
        )

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def answered(self, status: int, raw: bytes, headers: Mapping[str, str]) -> None:
        """Every answer of the server, before it is read (a rate budget follows its headers)."""

    def retry_after(self, raw: bytes, headers: Mapping[str, str]) -> float | None:
        """The server's hint on a 429, in seconds: a ``Retry-After`` header of seconds."""
        try:
            return float(headers["Retry-After"])
        except (KeyError, ValueError):
            return None

    async def _call(
        self,
        method: str,
        url: str,
        payload: dict[str, Any] | None,
        params: dict[str, str] | None = None,
        *,
        session: bool = False,
    ) -> Any:
        """One request; failures become ``BotError`` (retryable when the turn cannot have landed).
        With ``session`` (the URL names a session), a 404 is ``SessionGone``."""
        status, raw, headers = await self._exchange(method, url, json=payload, params=params)
        return self._read(status, raw, headers, session=session)

    async def _exchange(self, method: str, url: str, **request: Any) -> tuple[int, bytes, Mapping[str, str]]:
        """One request as sent (``request``: aiohttp's ``json``, ``data``, ``params``, ``headers``):
        its status, body and headers. A connection error or a timeout is a retryable ``BotError``."""
        if self._http is None:
            raise RuntimeError(f"{type(self).__name__}.start() was not called")
        try:
            async with self._http.request(method, url, **request) as response:
                raw = await response.read()
                status = response.status
                headers = response.headers
        except TimeoutError:
            raise BotError(f"{self.service} timed out", retryable=True) from None
        except aiohttp.ClientError as exc:
            reason = f"cannot reach {self.service} at {self.base} ({type(exc).__name__})"
            raise BotError(reason, retryable=True) from None
        await self.answered(status, raw, headers)
        return status, raw, headers

    def _read(self, status: int, raw: bytes, headers: Mapping[str, str], *, session: bool = False) -> Any:
        """An answer's JSON body; a failure as ``BotError`` (see ``_call``)."""
        if status in RETRYABLE_STATUS:
            retry_after = self.retry_after(raw, headers) if status == 429 else None
            raise BotError(
                f"{self.service} answered {status}", retryable=True, retry_after=retry_after, status=status
            )
        if status >= 400:
            error = SessionGone if status == 404 and session else BotError
            raise error(f"{self.service} answered {status}{_detail(raw)}", status=status)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise BotError(f"{self.service} answered {status} with a body that is not JSON") from None


def _detail(raw: bytes) -> str:
    """What an error answer says: its JSON ``detail``/``message``/``error``, or an HTML page's title."""
    try:
        body = json.loads(raw)
        detail = next((body[k] for k in ("detail", "message", "error") if body.get(k)), None)
    except (ValueError, AttributeError):
        title = TITLE.search(raw[:4096].decode(errors="replace"))
        detail = html.unescape(title.group(1).strip()) if title else None
    return f": {str(detail)[:200]}" if detail else ""


def json_object(raw: bytes) -> dict[str, Any]:
    """A body's JSON object; empty if it is none."""
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def created_at(item: dict[str, Any]) -> datetime:
    """An item's ``created_at`` (ISO 8601; UTC if it names no zone); the distant past if unreadable."""
    try:
        at = datetime.fromisoformat(str(item.get("created_at")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return at if at.tzinfo else at.replace(tzinfo=UTC)
