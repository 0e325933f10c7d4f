"""Widget uploads reach a text-only bot as links of their own (not the upload's URL), which go
with the person's erase and after MEDIA_KEEP_HOURS."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from bridge.admin import people
from bridge.admin.people import erase_person, keep_media
from bridge.typedefs import CORE
from tests.harness import eventually
from tests.widget import MakeClient, answer, send_with, start

LINK = re.compile(r"\[(?P<name>[^\]]+)\]\(http://bridge\.test(?P<path>/media/[\w-]{32}/[^)]+)\)")


async def linked(client: TestClient, sid: str, name: str, content: bytes, text: str = "see") -> str:
    """Upload ``content`` as ``name``, send it with ``text``: the path of the link the bot got."""
    form = FormData()
    form.add_field("files", content, filename=name, content_type="application/octet-stream")
    response = await client.post(f"/api/chat/{sid}/upload/", data=form)
    assert response.status == 201, await response.text()
    [uploaded] = (await response.json())["files"]
    task = await send_with(client, sid, {"message": text, "attachment_ids": [uploaded["id"]]})
    reply = (await answer(client, sid, task))["message"]["content"]
    found = LINK.search(reply)
    assert found is not None and found["name"] == name, reply
    return found["path"]


async def test_an_upload_is_a_download_link_of_its_sniffed_type(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_UPLOADS_ENABLED="true", BOT_BACKEND="echo")
    sid = (await start(client))["session_id"]
    path = await linked(client, sid, "page.html", b"<script>alert(1)</script>")
    response = await client.get(path)
    assert response.status == 200 and await response.read() == b"<script>alert(1)</script>"
    assert response.headers["Content-Type"].startswith("text/plain")  # sniffed: never text/html
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''page.html"


async def test_an_erase_takes_the_persons_files(make_client: MakeClient, tmp_path: Path) -> None:
    client = await make_client(WIDGET_UPLOADS_ENABLED="true", BOT_BACKEND="echo")
    core = client.app[CORE]
    mine, theirs = (await start(client))["session_id"], (await start(client))["session_id"]
    my_path = await linked(client, mine, "a.pdf", b"%PDF-1.4 mine")
    their_path = await linked(client, theirs, "b.pdf", b"%PDF-1.4 theirs")
    conversation = await core.store.conversation("web", mine)
    assert conversation is not None
    erased = await erase_person(core.store, core.bots, core.channels, tmp_path / "data", conversation.id)
    assert erased is not None and erased.files >= 2  # the upload and the fetched copy
    assert (await client.get(my_path)).status == 404
    assert (await client.get(their_path)).status == 200


async def test_files_are_removed_after_the_keeping_time(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(WIDGET_UPLOADS_ENABLED="true", BOT_BACKEND="echo", MEDIA_KEEP_HOURS="2")
    sid = (await start(client))["session_id"]
    path = await linked(client, sid, "a.pdf", b"%PDF-1.4 old")
    real = people.utcnow
    monkeypatch.setattr(people, "utcnow", lambda: real() + timedelta(hours=2, minutes=1))
    sweeping = asyncio.create_task(keep_media(client.app[CORE]))
    try:
        await eventually(lambda: _status(client, path, 404), what="the file to go")
    finally:
        sweeping.cancel()


async def _status(client: TestClient, path: str, expected: int) -> bool:
    return (await client.get(path)).status == expected
