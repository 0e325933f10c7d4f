"""python-telegram-bot's requests over aiohttp, the bridge's own HTTP client.

PTB's default transport (httpx) costs several times more CPU per call than aiohttp: its pool scans
every connection for each request, and each call looks up the async library afresh. PTB lets the
transport be replaced (``telegram.request.BaseRequest``); PTB itself still builds the calls and
maps Telegram's answers to its errors.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

Timeout = Any  # a float, None, or PTB's DEFAULT_NONE ("use the default")


class AiohttpRequest(BaseRequest):
    def __init__(self, connections: int, timeout: float):
        self._connections = connections
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float:
        return self._timeout

    async def initialize(self) -> None:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        write_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        connect_timeout: Timeout = BaseRequest.DEFAULT_NONE,
        pool_timeout: Timeout = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._http is None:  # PTB's Bot does not insist on initialize() before a call
            await self.initialize()
        assert self._http is not None
        read = self._given(read_timeout)
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self._given(connect_timeout),
            sock_read=read,
            connect=self._given(pool_timeout),
        )
        try:
            async with self._http.request(method, url, data=_body(request_data), timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}") from exc

    def _given(self, value: Timeout) -> float | None:
        return self._timeout if value is BaseRequest.DEFAULT_NONE else value


def _body(request_data: RequestData | None) -> Any:
    """Form fields as PTB encodes them (as its httpx transport sends them); files as multipart."""
    if request_data is None:
        return None
    files = request_data.multipart_data
    if not files:
        return request_data.json_parameters
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
