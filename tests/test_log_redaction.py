"""No log line carries a secret, a raw request or a message body, whichever logger writes it.

Malformed requests (LF-only line endings, a bad header line, an undecodable body) carrying the real
secrets and a marker text, then valid ones, with every library logger at DEBUG: the captured output
(stdlib and structlog, one handler) holds none of them.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from multidict import MultiDict

from bridge import logs
from bridge.redact import FILTER
from fakes.telegram import text_update
from fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, sign, sms
from tests.hostile import API_KEY, EMBED_KEY, ORIGIN, every_channel
from tests.rawhttp import exchange

MARKER = "MARKER-7f3a-private-words"
LIBRARIES = ("aiohttp", "asyncio", "sqlalchemy", "httpx", "httpcore", "telegram", "aiosqlite", "twilio")


QUIETED = ("aiohttp.access", "sqlalchemy.engine", "httpx", "httpcore", "telegram")  # by the bridge


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The bridge's logging set up as ``bridge serve`` does, into a buffer; restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in LIBRARIES + QUIETED}
    config = structlog.get_config()
    logs.configure("json", "debug")
    structlog.configure(cache_logger_on_first_use=False)  # later tests reconfigure structlog
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)
    structlog.configure(**config)
    FILTER.secrets.clear()


def everything_at_debug() -> None:
    """Louder than anyone would run it: what the bridge quiets too."""
    for name in LIBRARIES + QUIETED:
        logging.getLogger(name).setLevel(logging.DEBUG)


def request(method: str, path: str, headers: dict[str, str], body: bytes, eol: bytes = b"\r\n") -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: bridge.test", b"Connection: close"]
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"", b""]
    return eol.join(lines) + body


async def test_no_secret_raw_request_or_body_in_any_log(tmp_path: Path, captured: io.StringIO) -> None:
    async with every_channel(tmp_path, workers=True) as target:
        everything_at_debug()
        secrets = {**target.secrets, "Authorization": f"Bearer {API_KEY}", "Origin": ORIGIN}
        update = json.dumps(text_update(f"hello {MARKER}")).encode()
        form = sms(f"hi {MARKER}", AccountSid=ACCOUNT_SID)
        signature = sign(f"{PUBLIC_URL}/webhooks/twilio", form)
        twilio = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
        form_body = "&".join(f"{k}={v}" for k, v in form.items()).replace(" ", "+").encode()
        json_type = {"Content-Type": "application/json"}
        gzipped = {**secrets, **json_type, "Content-Encoding": "gzip"}
        malformed = [
            request("POST", "/webhooks/telegram", {**secrets, **json_type}, update, eol=b"\n"),
            request("POST", "/api/chat/start/", {**secrets, **json_type}, MARKER.encode(), eol=b"\n"),
            request("POST", "/api/trigger_bot", {**secrets, **json_type}, MARKER.encode(), eol=b"\n"),
            request("POST", "/webhooks/twilio", {**secrets, **twilio}, form_body, eol=b"\n"),
            request("POST", "/webhooks/telegram", {**secrets, "Bad Header\x01": MARKER}, update),
            request("POST", "/webhooks/telegram", gzipped, update),
            request("POST", "/webhooks/telegram", {**secrets, **json_type, "Content-Encoding": "br"}, update),
            request("POST", "/webhooks/telegram", gzipped, gzip.compress(update)[:-12]),
        ]
        for data in malformed:
            status, _, _ = await exchange(target.client, data)
            assert 400 <= status < 500
        # and valid requests, whose texts go to the database, the bot and Telegram
        client = target.client
        response = await client.post("/webhooks/telegram", data=update, headers={**secrets, **json_type})
        assert response.status == 200
        trigger = {
            "identifier": "42",
            "platform": "telegram",
            "experiment": "default",
            "message_text": f"news {MARKER}",
        }
        assert (await client.post("/api/trigger_bot", json=trigger, headers=secrets)).status == 200
        response = await client.post(
            "/webhooks/twilio", data=MultiDict(form), headers={"X-Twilio-Signature": signature}
        )
        assert response.status == 200
        await target.tg.wait_for(lambda: len(target.tg.texts(42)) == 2)
        await target.tw.wait_for(lambda: len(target.tw.sent()) == 1)
        output = captured.getvalue()
    secret_values = [
        *target.secrets.values(),
        EMBED_KEY,
        API_KEY,
        AUTH_TOKEN,
        target.tg.token,
        target.tg.token.split(":", 1)[1],
    ]
    assert "Error handling request" in output  # aiohttp logged the malformed requests...
    assert "INSERT INTO inbound_messages" in output  # ...SQLAlchemy its statements
    assert '"logger": "telegram.Bot"' in output  # ...PTB its calls to the Bot API
    for secret in secret_values:
        assert secret not in output
    assert MARKER not in output
    assert "Host: bridge.test" not in output  # no raw request at all
