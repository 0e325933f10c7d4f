"""The classes of bad input the fuzz test found, one readable example each: a 4xx with a JSON
``detail`` (never a 500), and nothing stored. Also what aiohttp answers itself (README, "Errors")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from multidict import MultiDict
from sqlalchemy import select

from bridge.store.tables import MessageRow
from bridge.typedefs import CORE
from fakes.twilio import ACCOUNT_SID, PUBLIC_URL, sign
from fakes.twilio import payload as twilio_payload
from tests.hostile import API_KEY, ORIGIN, Target, every_channel
from tests.rawhttp import exchange


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[Target]:
    async with every_channel(tmp_path) as running:
        yield running


def raw(method: str, path: str, headers: dict[str, str], body: bytes = b"", eol: bytes = b"\r\n") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: bridge.test", b"Connection: close"]
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    return eol.join([*lines, b"Content-Length: %d" % len(body), b"", b""]) + body


async def json_error(target: Target, data: bytes, status: int) -> str:
    before = await target.stored()
    got, headers, content = await exchange(target.client, data)
    assert got == status, content
    assert headers["content-type"].startswith("application/json")
    assert await target.stored() == before
    return str(json.loads(content)["detail"]) if content else ""


def widget(target: Target) -> dict[str, str]:
    return {
        "Origin": ORIGIN,
        "X-Embed-Key": target.secrets["X-Embed-Key"],
        "X-Session-Token": target.session_token,
    }


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"--b\r\nContent-Disposition: form-data; name=files; filename=a.txt\r\n\r\nno closing boundary",
        b"--b\nContent-Type: a\nContent-Type: b\n\nLF only, duplicated Content-Type\n--b--\n",
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="a\x00\r\nb"\r\n\r\nx\r\n--b--\r\n',
    ],
)
@pytest.mark.parametrize("boundary", ["; boundary=b", "", "; boundary=" + "b" * 71])
async def test_malformed_multipart_is_400(target: Target, body: bytes, boundary: str) -> None:
    headers = {**widget(target), "Content-Type": "multipart/form-data" + boundary}
    path = f"/api/chat/{target.session_id}/upload/"
    await json_error(target, raw("POST", path, headers, body), 400)


@pytest.mark.parametrize(
    "encoding, body",
    [
        ("gzip", b"garbage"),
        ("deflate", b"garbage"),
        ("gzip", b'{"message": "a plain body labelled gzip"}'),
    ],
)
async def test_undecodable_content_encoding_is_400_on_every_route(
    target: Target, encoding: str, body: bytes
) -> None:
    json_type = {"Content-Type": "application/json", "Content-Encoding": encoding}
    form = {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": encoding}
    signed = {**form, "X-Twilio-Signature": sign(f"{PUBLIC_URL}/webhooks/twilio", MultiDict())}
    requests = [
        ("/webhooks/telegram", {**json_type, **target.secrets}),
        ("/webhooks/twilio", signed),
        (
            "/webhooks/twilio/status",
            {**signed, "X-Twilio-Signature": sign(f"{PUBLIC_URL}/webhooks/twilio/status", MultiDict())},
        ),
        ("/api/trigger_bot", {**json_type, "X-api-key": API_KEY}),
        ("/api/chat/start/", {**json_type, **widget(target)}),
        (f"/api/chat/{target.session_id}/message/", {**json_type, **widget(target)}),
    ]
    for path, headers in requests:
        assert await json_error(target, raw("POST", path, headers, body), 400)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_static_names_that_cannot_be_files_are_404(target: Target, method: str) -> None:
    for name in ["d" * 5000, "a/" * 600 + "b", "%00", "..%2F..%2Fpyproject.toml", "a/../../x"]:
        await json_error(target, raw(method, f"/static/vendor/{name}", {}), 404)


async def test_unsatisfiable_range_and_failed_precondition_are_json(target: Target) -> None:
    file_id, name = await _upload(target)
    path = f"/uploads/{file_id}/{name}"
    assert await json_error(target, raw("GET", path, {"Range": "bytes=99999-"}), 416)
    assert await json_error(target, raw("GET", path, {"If-Match": '"nope"'}), 412)
    status, _, content = await exchange(target.client, raw("GET", path, {"Range": "bytes=0-1"}))
    assert status == 206 and content == b"he"


async def _upload(target: Target) -> tuple[str, str]:
    body = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\nhello\r\n--b--\r\n'
    headers = {**widget(target), "Content-Type": "multipart/form-data; boundary=b"}
    status, _, content = await exchange(
        target.client, raw("POST", f"/api/chat/{target.session_id}/upload/", headers, body)
    )
    assert status == 201
    [uploaded] = json.loads(content)["files"]
    return uploaded["id"], uploaded["name"]


@pytest.mark.parametrize("path", ["/healthz", "/webhooks/telegram", "/nowhere", "/static/vendor/x"])
async def test_unknown_expect_is_417_json(target: Target, path: str) -> None:
    detail = await json_error(target, raw("POST", path, {"Expect": "teapot"}), 417)
    assert "100-continue" in detail


async def test_method_not_allowed_and_too_large_are_json(target: Target) -> None:
    assert await json_error(target, raw("DELETE", "/healthz", {}), 405)
    huge = b"x" * (target.settings.max_body_bytes + 1)
    headers = {"Content-Type": "application/json", "X-api-key": API_KEY}
    assert await json_error(target, raw("POST", "/api/trigger_bot", headers, huge), 413)


async def test_status_callback_with_a_5000_digit_error_code(target: Target) -> None:
    form = twilio_payload("status", MessageStatus="failed", ErrorCode="9" * 5000, AccountSid=ACCOUNT_SID)
    response = await target.client.post(
        "/webhooks/twilio/status",
        data=list(form.items()),
        headers={"X-Twilio-Signature": sign(f"{PUBLIC_URL}/webhooks/twilio/status", form)},
    )
    assert response.status == 200


@pytest.mark.parametrize("text", ["\ud800", "before \ud800 after \udfff", "nul\x00here"])
async def test_proactive_text_is_cleaned_like_every_other(target: Target, text: str) -> None:
    trigger = {"identifier": "42", "platform": "telegram", "experiment": "default", "message_text": text}
    body = json.dumps(trigger).encode()
    headers = {"Content-Type": "application/json", "X-api-key": API_KEY}
    status, _, _ = await exchange(target.client, raw("POST", "/api/trigger_bot", headers, body))
    assert status == 200
    store = target.client.app[CORE].store
    conversation = await store.conversation("telegram", "42")
    assert conversation is not None
    async with store.reading() as session:  # kept to be delivered, in order, by the workers
        [kept] = await session.scalars(
            select(MessageRow.text).where(MessageRow.conversation_id == conversation.id)
        )
    assert kept == text.replace("\x00", "").encode("utf-8", "replace").decode()
    assert "\x00" not in kept and kept.encode("utf-8")  # what Telegram can be sent


async def test_what_aiohttp_answers_itself_stays_4xx(target: Target) -> None:
    """Before the bridge runs (README, "Errors"): plain-text 4xx answers, never a 5xx."""
    secret = target.secrets["X-Telegram-Bot-Api-Secret-Token"]
    for data in [
        raw("POST", "/webhooks/telegram", {"X-Telegram-Bot-Api-Secret-Token": secret}, b"{}", eol=b"\n"),
        raw("GET", "/healthz", {"Bad Header\x01": "x"}),
        raw("POST", "/webhooks/telegram", {"Content-Encoding": "br"}, b"xx"),
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
    ]:
        status, _, _ = await exchange(target.client, data)
        assert 400 <= status < 500
