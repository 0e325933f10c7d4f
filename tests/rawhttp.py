"""HTTP requests written byte for byte, for input no HTTP client library would send."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient


async def exchange(client: TestClient, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Write ``data`` as is on a new connection; the answer's status, headers and body (read until
    the server closes: send ``Connection: close``, or a request it cannot parse)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    while answer.startswith(b"HTTP/1.1 100"):  # an interim answer to Expect: 100-continue
        answer = answer.partition(b"\r\n\r\n")[2]
    head, _, content = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split(" ", 2)[1]), headers, content


async def raw_request(
    client: TestClient, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, dict[str, Any]]:
    """One HTTP/1.1 request written byte for byte (aiohttp's client would refuse or re-encode
    header bytes that are not UTF-8); the status and the JSON body of the answer."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: bridge.test", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"", b""]
    status, _, content = await exchange(client, b"\r\n".join(lines) + body)
    return status, json.loads(content)
