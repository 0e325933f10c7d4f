"""The web channel's Chat API through the real HTTP app, real SQLite and the real workers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from adapters.web import WebChannel, install
from bridge.channel import Channel
from bridge.settings import load_settings
from bridge.web import create_app
from tests.fakes.ocs import FakeOCS, FakeSession
from tests.rawhttp import raw_request

MakeClient = Callable[..., Awaitable[TestClient]]
ORIGIN = "https://shop.example.org"


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """``await make_client(WIDGET_EMBED_KEY=...)``: the bridge with its web channel, on SQLite."""
    clients: list[TestClient] = []

    async def make(**env: str) -> TestClient:
        environ = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bridge.db",
            "PUBLIC_URL": "http://bridge.test",
            "WIDGET_ALLOWED_ORIGINS": ORIGIN,
            "WIDGET_UPLOADS_DIR": str(tmp_path / "uploads"),
            **env,
        }
        settings = load_settings(environ)
        channels: dict[str, Channel] = {
            name: WebChannel(name, cs) for name, cs in settings.channels.items() if cs.type == "web"
        }
        client = TestClient(TestServer(create_app(settings, channels, plugins=[install])))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def start(client: TestClient, chatbot_id: str = "web", **headers: str) -> dict[str, Any]:
    response = await client.post(
        "/api/chat/start/",
        json={"chatbot_id": chatbot_id, "session_data": {"source": "widget"}, "participant_remote_id": "p1"},
        headers=headers,
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
    for _ in range(200):
        response = await client.get(f"/api/chat/{session_id}/{task_id}/poll/", headers=headers)
        assert response.status == 200, await response.text()
        body = await response.json()
        if body["status"] != "processing":
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("the task never completed")


async def test_a_message_gets_the_bots_answer(make_client: MakeClient) -> None:
    client = await make_client()
    started = await start(client)
    assert len(started["session_id"]) >= 32 and started["session_token"]
    task = await send(client, started["session_id"], "hello")
    body = await answer(client, started["session_id"], task)
    assert body["status"] == "complete"
    assert body["message"]["role"] == "assistant"
    assert body["message"]["content"] == "echo: hello"
    assert body["message"]["created_at"].endswith("Z")


async def test_attachments_and_links_reach_the_widget(make_client: MakeClient, fake_ocs: FakeOCS) -> None:
    def reply(text: str, session: FakeSession) -> tuple[str, list[tuple[str, Path | bytes]]]:
        return f"See [the guide](https://example.org/guide) about {text}", [("report.pdf", b"%PDF-1.4")]

    fake_ocs.reply = reply
    client = await make_client(**fake_ocs.env())
    started = await start(client, chatbot_id=fake_ocs.experiment_id)  # default chatbot id: the experiment
    body = await answer(client, started["session_id"], await send(client, started["session_id"], "taxes"))
    message = body["message"]
    assert message["content"].startswith("See [the guide](https://example.org/guide) about taxes")
    [attachment] = message["attachments"]
    assert attachment["name"] == "report.pdf" and attachment["content_url"].startswith(fake_ocs.url)
    assert f"[report.pdf]({attachment['content_url']})" in message["content"]  # widget 0.6 shows names only


async def test_history_poll_shows_proactive_messages_and_never_an_answer_twice(
    make_client: MakeClient,
) -> None:
    client = await make_client(BRIDGE_API_KEY="k3y")
    sid = (await start(client))["session_id"]
    first = await answer(client, sid, await send(client, sid, "one"))
    trigger = {"identifier": sid, "platform": "web", "experiment": "e", "message_text": "A reminder"}
    response = await client.post("/api/trigger_bot", json=trigger, headers={"X-api-key": "k3y"})
    assert response.status == 200
    # the task poll already showed "echo: one": the 30-second poll adds only the reminder
    since = first["message"]["created_at"]
    polled = await (await client.get(f"/api/chat/{sid}/poll/", params={"since": since})).json()
    assert [m["content"] for m in polled["messages"]] == ["A reminder"]
    assert polled["session_status"] == "active" and polled["has_more"] is False
    everything = await (await client.get(f"/api/chat/{sid}/poll/")).json()
    assert [m["content"] for m in everything["messages"]] == ["A reminder"]


async def test_an_answer_the_widget_never_fetched_reaches_it_through_history(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adapters.web.routes

    client = await make_client()
    sid = (await start(client))["session_id"]
    await send(client, sid, "lost in a page reload")
    polled = await (await client.get(f"/api/chat/{sid}/poll/")).json()
    assert polled["messages"] == []  # the task poll may still fetch it: not shown here yet
    monkeypatch.setattr(adapters.web.routes, "TASK_POLL_WINDOW", timedelta(0))  # ...until it gave up
    for _ in range(100):  # the echo bot answers meanwhile
        polled = await (await client.get(f"/api/chat/{sid}/poll/")).json()
        if polled["messages"]:
            break
        await asyncio.sleep(0.05)
    assert [m["content"] for m in polled["messages"]] == ["echo: lost in a page reload"]


async def test_each_start_is_a_new_conversation_and_bot_session(
    make_client: MakeClient, fake_ocs: FakeOCS
) -> None:
    client = await make_client(**fake_ocs.env())
    first = (await start(client, fake_ocs.experiment_id))["session_id"]
    await answer(client, first, await send(client, first, "hi"))
    second = (await start(client, fake_ocs.experiment_id))["session_id"]  # the widget's "new chat"
    await answer(client, second, await send(client, second, "hi again"))
    assert first != second
    assert sorted(len(s.messages) for s in fake_ocs.sessions.values()) == [2, 2]  # two OCS sessions
    older, newer = sorted(fake_ocs.sessions.values(), key=lambda s: s.created_at)
    assert older.ended and not newer.ended  # "new chat" ended the participant's earlier OCS session


async def test_a_failed_answer_is_an_error_with_the_apology(
    make_client: MakeClient, fake_ocs: FakeOCS
) -> None:
    client = await make_client(**fake_ocs.env())
    sid = (await start(client, fake_ocs.experiment_id))["session_id"]
    fake_ocs.fail_next(500)
    body = await answer(client, sid, await send(client, sid, "boom"))
    assert body["status"] == "error"
    assert "Sorry" in body["error"]


# origins and CORS ------------------------------------------------------------------------------------
async def test_preflight_from_an_allowed_origin(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.options(
        "/api/chat/start/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-embed-key,x-ocs-widget-version",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"content-type", "x-embed-key", "x-ocs-widget-version", "x-session-token"} <= {
        h.strip() for h in allowed.split(",")
    }


async def test_foreign_origin_gets_403_without_cors_headers(make_client: MakeClient) -> None:
    client = await make_client()
    evil = {"Origin": "https://evil.example.com"}
    preflight = await client.options(
        "/api/chat/start/", headers={**evil, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    response = await client.post("/api/chat/start/", json={"chatbot_id": "web"}, headers=evil)
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_errors_to_allowed_origins_carry_cors_headers(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/api/chat/nosuchsessionnosuchsession/poll/", headers={"Origin": ORIGIN})
    assert response.status == 404
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert (await response.json())["detail"] == "unknown session"


async def test_default_allowed_origin_is_the_bridges_own(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_ALLOWED_ORIGINS="")
    ok = await client.post(
        "/api/chat/start/", json={"chatbot_id": "web"}, headers={"Origin": "http://bridge.test"}
    )
    assert ok.status == 201
    other = await client.post("/api/chat/start/", json={"chatbot_id": "web"}, headers={"Origin": ORIGIN})
    assert other.status == 403


# embed key and session tokens -----------------------------------------------------------------------
async def test_embed_key_is_required_when_set(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_EMBED_KEY="k-123")
    for headers in ({}, {"X-Embed-Key": "wrong"}):
        response = await client.post("/api/chat/start/", json={"chatbot_id": "web"}, headers=headers)
        assert response.status == 403, headers
    sid = (await start(client, **{"X-Embed-Key": "k-123"}))["session_id"]
    assert (await client.get(f"/api/chat/{sid}/poll/")).status == 403
    assert (await client.get(f"/api/chat/{sid}/poll/", headers={"X-Embed-Key": "k-123"})).status == 200


async def test_session_token_checked_when_sent(make_client: MakeClient) -> None:
    client = await make_client()
    started = await start(client)
    sid, token = started["session_id"], started["session_token"]
    assert (await client.get(f"/api/chat/{sid}/poll/")).status == 200  # widget 0.6 sends none
    assert (await client.get(f"/api/chat/{sid}/poll/", headers={"X-Session-Token": token})).status == 200
    bad = await client.get(f"/api/chat/{sid}/poll/", headers={"X-Session-Token": token[:-2] + "xx"})
    assert bad.status == 403


async def test_session_token_required_when_the_client_sent_one_at_start(make_client: MakeClient) -> None:
    client = await make_client()
    started = await start(client, **{"X-Session-Token": ""})
    sid, token = started["session_id"], started["session_token"]
    assert (await client.post(f"/api/chat/{sid}/message/", json={"message": "hi"})).status == 403
    assert (await client.get(f"/api/chat/{sid}/poll/")).status == 403
    await answer(
        client, sid, await send(client, sid, "hi", **{"X-Session-Token": token}), **{"X-Session-Token": token}
    )


@pytest.mark.parametrize("value", [b"\xff", b"k-123\xff", b"\xc3\x28\x80\xfe"])
async def test_embed_key_that_is_not_utf8_is_403(make_client: MakeClient, value: bytes) -> None:
    client = await make_client(WIDGET_EMBED_KEY="k-123")
    body = json.dumps({"chatbot_id": "web"}).encode()
    headers = [(b"Content-Type", b"application/json"), (b"X-Embed-Key", value)]
    status, answer = await raw_request(client, "POST", "/api/chat/start/", headers, body)
    assert status == 403 and answer["detail"]
    sid = (await start(client, **{"X-Embed-Key": "k-123"}))["session_id"]
    status, _ = await raw_request(client, "GET", f"/api/chat/{sid}/poll/", [(b"X-Embed-Key", value)])
    assert status == 403


@pytest.mark.parametrize("value", [b"\xff", b"\xc3\x28\x80\xfe"])
async def test_session_token_that_is_not_utf8_is_403(make_client: MakeClient, value: bytes) -> None:
    client = await make_client()
    started = await start(client)
    sid, token = started["session_id"], started["session_token"]
    for path in (f"/api/chat/{sid}/poll/", f"/api/chat/{sid}/nosuchtask/poll/"):
        status, answer = await raw_request(client, "GET", path, [(b"X-Session-Token", value)])
        assert status == 403 and answer["detail"] == "invalid X-Session-Token"
    tail = [(b"X-Session-Token", token.encode() + value)]
    assert (await raw_request(client, "GET", f"/api/chat/{sid}/poll/", tail))[0] == 403


async def test_session_token_required_by_setting(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_REQUIRE_SESSION_TOKEN="true")
    sid = (await start(client))["session_id"]
    assert (await client.get(f"/api/chat/{sid}/poll/")).status == 403


# unknown things and malformed input -----------------------------------------------------------------
async def test_unknown_session_task_and_chatbot(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await client.post("/api/chat/start/", json={"chatbot_id": "nope"})).status == 404
    unknown = "x" * 32
    assert (await client.post(f"/api/chat/{unknown}/message/", json={"message": "hi"})).status == 404
    assert (await client.get(f"/api/chat/{unknown}/poll/")).status == 404
    assert (await client.get("/api/chat/../poll/")).status == 404
    sid = (await start(client))["session_id"]
    other = (await start(client))["session_id"]
    task = await send(client, other, "not yours")
    assert (await client.get(f"/api/chat/{sid}/{task}/poll/")).status == 404
    assert (await client.get(f"/api/chat/{sid}/nosuchtask/poll/")).status == 404


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[]", "application/json", 400),
        (b'{"message": ""}', "application/json", 400),
        (b'{"message": 5}', "application/json", 400),
        (b"message=hi", "application/x-www-form-urlencoded", 415),
    ],
)
async def test_malformed_messages(
    make_client: MakeClient, body: bytes, content_type: str, status: int
) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    response = await client.post(
        f"/api/chat/{sid}/message/", data=body, headers={"Content-Type": content_type}
    )
    assert response.status == status
    assert "detail" in await response.json()


async def test_bad_since_and_missing_chatbot_id(make_client: MakeClient) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    assert (await client.get(f"/api/chat/{sid}/poll/", params={"since": "yesterday"})).status == 400
    assert (await client.post("/api/chat/start/", json={})).status == 400


@pytest.mark.parametrize(
    "since", ["9999-12-31T23:59:59.999999-23:59", "0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00+00:01"]
)
async def test_since_out_of_range_in_utc_is_400(make_client: MakeClient, since: str) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    response = await client.get(f"/api/chat/{sid}/poll/", params={"since": since})
    assert response.status == 400
    assert "since" in (await response.json())["detail"]
    edge = await client.get(f"/api/chat/{sid}/poll/", params={"since": "9999-12-31T23:59:59.999999+05:00"})
    assert edge.status == 200 and (await edge.json())["messages"] == []


async def test_oversized_message(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_MAX_MESSAGE_CHARS="100")
    sid = (await start(client))["session_id"]
    response = await client.post(f"/api/chat/{sid}/message/", json={"message": "x" * 101})
    assert response.status == 413
    huge = await client.post(f"/api/chat/{sid}/message/", json={"message": "x" * 2_000_000})
    assert huge.status == 413  # over the body limit


# rate limits ----------------------------------------------------------------------------------------
async def test_per_session_rate_limit(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_SESSION_RATE="3")
    sid = (await start(client))["session_id"]
    for i in range(3):
        await send(client, sid, f"m{i}")
    response = await client.post(f"/api/chat/{sid}/message/", json={"message": "one too many"})
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    other = (await start(client))["session_id"]
    await send(client, other, "another session is not throttled")


async def test_per_address_rate_limit(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_IP_RATE="2")
    await start(client)
    await start(client)
    response = await client.post("/api/chat/start/", json={"chatbot_id": "web"})
    assert response.status == 429


async def test_forwarded_for_counts_the_address_the_proxy_appended(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_IP_RATE="2", WIDGET_TRUST_FORWARDED_FOR="true")

    async def start_from(forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        return (await client.post("/api/chat/start/", json={"chatbot_id": "web"}, headers=headers)).status

    # the client writes whatever it likes on the left; the proxy appends the address it saw
    assert await start_from("10.0.0.1, 203.0.113.7") == 201
    assert await start_from("10.0.0.2, 203.0.113.7") == 201
    assert await start_from("10.0.0.3, 203.0.113.7") == 429
    assert await start_from("203.0.113.7") == 429
    assert await start_from("203.0.113.7, 198.51.100.9") == 201  # another client behind the proxy


# uploads --------------------------------------------------------------------------------------------
async def test_upload_is_refused_unless_enabled(make_client: MakeClient) -> None:
    client = await make_client()
    sid = (await start(client))["session_id"]
    form = FormData()
    form.add_field("files", b"hello", filename="a.txt", content_type="text/plain")
    response = await client.post(f"/api/chat/{sid}/upload/", data=form)
    assert response.status == 403
    assert "not enabled" in (await response.json())["detail"]
    with_ids = await client.post(f"/api/chat/{sid}/message/", json={"message": "hi", "attachment_ids": ["x"]})
    assert with_ids.status == 400


async def test_upload_when_enabled_reaches_the_bot_as_a_link(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_UPLOADS_ENABLED="true")
    sid = (await start(client))["session_id"]
    form = FormData()
    form.add_field("files", b"hello file", filename="notes.txt", content_type="text/plain")
    response = await client.post(f"/api/chat/{sid}/upload/", data=form)
    assert response.status == 201
    [uploaded] = (await response.json())["files"]
    assert uploaded["name"] == "notes.txt" and uploaded["size"] == 10
    task = await send_with(client, sid, {"message": "read this", "attachment_ids": [uploaded["id"]]})
    content = (await answer(client, sid, task))["message"]["content"]
    url = f"http://bridge.test/uploads/{uploaded['id']}/notes.txt"
    assert content == f"echo: read this\n\n[notes.txt]({url})"
    download = await client.get(f"/uploads/{uploaded['id']}/notes.txt")
    assert download.status == 200 and await download.read() == b"hello file"
    other = (await start(client))["session_id"]
    stolen = await client.post(
        f"/api/chat/{other}/message/", json={"message": "x", "attachment_ids": [uploaded["id"]]}
    )
    assert stolen.status == 400
    not_multipart = await client.post(f"/api/chat/{sid}/upload/", json={})
    assert not_multipart.status == 415


async def upload_html(client: TestClient, sid: str, name: str) -> dict[str, Any]:
    form = FormData()
    form.add_field(
        "files", b"<script>alert(document.domain)</script>", filename=name, content_type="text/html"
    )
    response = await client.post(f"/api/chat/{sid}/upload/", data=form)
    assert response.status == 201, await response.text()
    [uploaded] = (await response.json())["files"]
    return dict(uploaded)


async def test_downloads_never_render_on_the_bridges_origin(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_UPLOADS_ENABLED="true")
    sid = (await start(client))["session_id"]
    page = await upload_html(client, sid, "page.html")
    response = await client.get(f"/uploads/{page['id']}/page.html")
    assert response.status == 200
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''page.html"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    body, content_type = multipart([("my notes (1).html", b"<p>hi</p>")])
    posted = await client.post(f"/api/chat/{sid}/upload/", data=body, headers={"Content-Type": content_type})
    [spaced] = (await posted.json())["files"]
    assert spaced["name"] == "my notes _1_.html"
    response = await client.get(f"/uploads/{spaced['id']}/my notes _1_.html")
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''my%20notes%20_1_.html"


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


@pytest.mark.parametrize("streamed", [False, True])
async def test_upload_is_limited_in_number_of_files(
    make_client: MakeClient, tmp_path: Path, streamed: bool
) -> None:
    client = await make_client(WIDGET_UPLOADS_ENABLED="true")
    sid = (await start(client))["session_id"]
    path = f"/api/chat/{sid}/upload/"
    body, content_type = multipart([(f"f{i}.txt", b"x" * 10) for i in range(11)])
    if streamed:
        assert await post_streamed(client, path, body, content_type) == 413
    else:
        response = await client.post(path, data=body, headers={"Content-Type": content_type})
        assert response.status == 413
        assert "10 files" in (await response.json())["detail"]
    assert stored_files(tmp_path / "uploads") == []  # the ten already written are gone too
    body, content_type = multipart([(f"f{i}.txt", b"x" * 10) for i in range(10)])
    response = await client.post(path, data=body, headers={"Content-Type": content_type})
    assert response.status == 201
    assert len((await response.json())["files"]) == 10


@pytest.mark.parametrize("streamed", [False, True])
async def test_upload_is_limited_in_total_size(
    make_client: MakeClient, tmp_path: Path, streamed: bool
) -> None:
    # each file is within WIDGET_MAX_UPLOAD_BYTES, but together they pass the app's MAX_BODY_BYTES
    client = await make_client(
        WIDGET_UPLOADS_ENABLED="true", WIDGET_MAX_UPLOAD_BYTES="3000", MAX_BODY_BYTES="4096"
    )
    sid = (await start(client))["session_id"]
    path = f"/api/chat/{sid}/upload/"
    body, content_type = multipart([("a.txt", b"a" * 2500), ("b.txt", b"b" * 2500)])
    if streamed:
        assert await post_streamed(client, path, body, content_type) == 413
    else:
        response = await client.post(path, data=body, headers={"Content-Type": content_type})
        assert response.status == 413
        assert "detail" in await response.json()
    assert stored_files(tmp_path / "uploads") == []  # a.txt, written first, is gone too
    body, content_type = multipart([("a.txt", b"a" * 2500)])
    response = await client.post(path, data=body, headers={"Content-Type": content_type})
    assert response.status == 201


async def send_with(client: TestClient, sid: str, body: dict[str, Any]) -> str:
    response = await client.post(f"/api/chat/{sid}/message/", json=body)
    assert response.status == 202, await response.text()
    return str((await response.json())["task_id"])


# the demo page --------------------------------------------------------------------------------------
async def test_demo_page_embeds_the_widget(make_client: MakeClient) -> None:
    client = await make_client(WIDGET_EMBED_KEY="public-key")
    response = await client.get("/")
    assert response.status == 200
    page = await response.text()
    assert '<open-chat-studio-widget id="chat" chatbot-id="web"' in page
    assert "public-key" in page
    assert "cdn.jsdelivr.net/npm/open-chat-studio-widget@0.6.0" in page
