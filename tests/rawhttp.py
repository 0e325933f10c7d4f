"""HTTP requests written byte for byte, for input no HTTP client library would send."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient


async def raw_request(
    client: TestClient, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, dict[str, Any]]:
    """One HTTP/1.1 request written byte for byte (aiohttp's client would refuse or re-encode
    header bytes that are not UTF-8); the status and the JSON body of the answer."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: bridge.test", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"", b""]
    writer.write(b"\r\n".join(lines) + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, content = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(content)
