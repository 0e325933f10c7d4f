"""Shared helpers for the web channel's Chat API tests: the widget's requests (``make_client``: conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient

from tests.harness import eventually

MakeClient = Callable[..., Awaitable[TestClient]]
ORIGIN = "https://shop.example.org"
# How widget 0.6.0 calls: it announces its version and never sends a session token back.
WIDGET_060 = {"x-ocs-widget-version": "0.6.0"}


async def start(client: TestClient, chatbot_id: str = "web", **headers: str) -> dict[str, Any]:
    """A session as widget 0.6.0 starts it (``headers`` add to or replace its own)."""
    response = await client.post(
        "/api/chat/start/",
        json={"chatbot_id": chatbot_id, "session_data": {"source": "widget"}, "participant_remote_id": "p1"},
        headers={**WIDGET_060, **headers},
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def send(client: TestClient, session_id: str, text: str, **headers: str) -> str:
    response = await client.post(f"/api/chat/{session_id}/message/", json={"message": text}, headers=headers)
    assert response.status == 202, await response.text()
    body = await response.json()
    assert body["status"] == "processing"
    return str(body["task_id"])


async def answer(client: TestClient, session_id: str, task_id: str, **headers: str) -> dict[str, Any]:
    """Poll like the widget (but faster) until the task is no longer processing."""

    async def done() -> dict[str, Any] | None:
        response = await client.get(f"/api/chat/{session_id}/{task_id}/poll/", headers=headers)
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return None if body["status"] == "processing" else body

    result: dict[str, Any] = await eventually(done, what="the task to complete")
    return result


async def poll(client: TestClient, session_id: str, **params: str) -> dict[str, Any] | None:
    """The widget's history poll; None while it shows no message."""
    body: dict[str, Any] = await (await client.get(f"/api/chat/{session_id}/poll/", params=params)).json()
    return body if body["messages"] else None


async def send_with(client: TestClient, sid: str, body: dict[str, Any]) -> str:
    response = await client.post(f"/api/chat/{sid}/message/", json=body)
    assert response.status == 202, await response.text()
    return str((await response.json())["task_id"])


# uploads --------------------------------------------------------------------------------------------
async def upload_html(client: TestClient, sid: str, name: str) -> dict[str, Any]:
    form = FormData()
    form.add_field(
        "files", b"<script>alert(document.domain)</script>", filename=name, content_type="text/html"
    )
    response = await client.post(f"/api/chat/{sid}/upload/", data=form)
    assert response.status == 201, await response.text()
    [uploaded] = (await response.json())["files"]
    return dict(uploaded)


def multipart(files: list[tuple[str, bytes]], boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart/form-data body with the given ``files`` fields, plus a small other field."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="participant_name"\r\n\r\nAda\r\n'.encode()
    ]
    for name, content in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        parts.append(head.encode() + b"Content-Type: text/plain\r\n\r\n" + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def post_streamed(client: TestClient, path: str, body: bytes, content_type: str) -> int:
    """Posted in small chunks without Content-Length (chunked): the server only learns the size as
    it reads, after it has written the first files."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]
            await asyncio.sleep(0)

    try:
        response = await client.post(path, data=chunks(), headers={"Content-Type": content_type})
    except OSError:  # the server answered and closed before the whole body was sent
        return 413
    return response.status


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
