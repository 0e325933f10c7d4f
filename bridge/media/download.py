"""Downloading a person's file from a platform: streamed, size capped, and the platform's
credentials sent to its own host only (a redirect to another host gets none)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from urllib.parse import urljoin, urlsplit

import aiohttp

from bridge.channel import SendError

CHUNK = 64 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def megabytes(size: int) -> str:
    """``20 MB``: a size limit as a person reads it."""
    return f"{size / 1_000_000:g} MB"


class FileTooLarge(SendError):
    """The file is larger than ``limit`` bytes: it can never be fetched (a final failure)."""

    def __init__(self, limit: int):
        super().__init__(f"the file is larger than {megabytes(limit)}", final=True)
        self.limit = limit


class Downloader:
    """A channel's HTTP client for people's files (opened on first use, closed with the channel).

    Failure reasons never quote the URL: a Telegram file URL holds the bot token."""

    def __init__(self, what: str, timeout: float):
        self.what = what  # "Telegram", "Twilio": named in failure reasons
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def stream(
        self, url: str, limit: int, credentials: Mapping[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        """The body of ``GET url`` in chunks, at most ``limit`` bytes (``FileTooLarge`` past it).
        Redirects are followed here, ``credentials`` (headers) only to ``url``'s own origin."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(sock_connect=self.timeout, sock_read=self.timeout)
            )
        origin = _origin(url)
        try:
            for _ in range(MAX_REDIRECTS + 1):
                headers = dict(credentials or {}) if _origin(url) == origin else {}
                async with self._http.get(url, headers=headers, allow_redirects=False) as response:
                    location = response.headers.get("Location")
                    if response.status in _REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    self._check(response, limit)
                    size = 0
                    async for chunk in response.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        if size > limit:
                            raise FileTooLarge(limit)
                        yield chunk
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(f"{self.what}: the file could not be downloaded ({type(exc).__name__})") from None
        raise SendError(f"{self.what}: too many redirects for the file", final=True)

    def _check(self, response: aiohttp.ClientResponse, limit: int) -> None:
        status = response.status
        if status in (404, 410):
            raise SendError(f"{self.what}: the file is gone ({status})", final=True)
        if status >= 400:  # a refusal (401, 403) stays one; the platform's own trouble may pass
            final = status < 500 and status != 429
            raise SendError(f"{self.what}: the file could not be downloaded ({status})", final=final)
        if response.content_length is not None and response.content_length > limit:
            raise FileTooLarge(limit)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
