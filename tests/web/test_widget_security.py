"""The web channel's Chat API through the real HTTP app, real SQLite and the real workers: origins and
CORS, embed keys, session tokens, undecodable headers, rate limits and uploads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aiohttp import FormData

from tests.rawhttp import raw_request
from tests.widget import (
    ORIGIN,
    MakeClient,
    answer,
    multipart,
    post_streamed,
    send,
    send_with,
    start,
    stored_files,
    upload_html,
)


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
    assert response.status == 403
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
        assert status == 403 and answer["code"] == "session_token_invalid"
    tail = [(b"X-Session-Token", token.encode() + value)]
    assert (await raw_request(client, "GET", f"/api/chat/{sid}/poll/", tail))[0] == 403


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
    assert response.status == 400  # as OCS refuses files: widget 0.11 drops a session on a 403
    assert "not enabled" in (await response.json())["error"]
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
    caption, link = content.split("\n\n")
    assert caption == "echo: read this"
    linked = re.fullmatch(r"\[notes\.txt\]\(http://bridge\.test(/media/[\w-]{32}/notes\.txt)\)", link)
    assert linked is not None, link  # a link of its own, not the upload's id
    for path in (linked[1], f"/uploads/{uploaded['id']}/notes.txt"):
        download = await client.get(path)
        assert download.status == 200 and await download.read() == b"hello file"
    other = (await start(client))["session_id"]
    stolen = await client.post(
        f"/api/chat/{other}/message/", json={"message": "x", "attachment_ids": [uploaded["id"]]}
    )
    assert stolen.status == 400
    not_multipart = await client.post(f"/api/chat/{other}/upload/", json={})
    assert not_multipart.status == 415


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
