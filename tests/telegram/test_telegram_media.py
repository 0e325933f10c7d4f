"""A person's files on Telegram: parsed as Media, fetched with getFile in the worker, relayed to a
bot that reads text only as expiring named links (the ``incoming_message`` transport)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.media import links
from bridge.model import Kind, Media
from fakes.ocs import FakeOCS
from fakes.telegram import FakeTelegram, payload
from tests.harness import Harness
from tests.test_log_redaction import captured as captured  # the bridge's logs, at debug
from tests.test_log_redaction import everything_at_debug

from .test_telegram_parse import one

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n" * 50
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 100


@pytest.fixture
def bridge_env() -> dict[str, str]:
    return {"TEXT_UNSUPPORTED": "I read text only."}


def document(
    file_id: str = "BQACAgIAAxkBAAIC_pdf", caption: str = "Please check my invoice", **extra: Any
) -> Any:
    meta = {"file_id": file_id, "file_unique_id": "AgADpdf", "file_name": "invoice.pdf"}
    meta |= {"mime_type": "application/pdf", "file_size": len(PDF)} | extra
    changes: dict[str, Any] = {"document": meta, "caption": caption} if caption else {"document": meta}
    update = payload("photo", **changes)
    del update["message"]["photo"]
    return update


def relayed(ocs: FakeOCS) -> list[str]:
    return [c.json["message"] for c in ocs.calls if c.path.endswith("/incoming_message")]


# parsing ----------------------------------------------------------------------------------------
def test_a_photo_is_its_largest_size_and_a_text_message() -> None:
    m = one("photo")
    assert (m.kind, m.text, m.what) == (Kind.TEXT, "", "")
    assert m.media == (Media("photo", "AgACAgIAAxkBAAIBZ2c_big", size=54321),)


def test_a_voice_note_keeps_its_length_for_speech_to_text() -> None:
    [voice] = one("voice").media
    assert (voice.kind, voice.ref, voice.content_type, voice.seconds) == (
        "voice",
        "AwACAgIAAxkBAAIB",
        "audio/ogg",
        3.0,
    )


def test_stickers_locations_and_contacts_stay_unsupported() -> None:
    for name in ("sticker", "location", "contact"):
        m = one(name)
        assert (m.kind, m.media) == (Kind.UNSUPPORTED, ())


# the incoming_message transport: links ------------------------------------------------------------
async def test_a_pdf_reaches_the_bot_as_a_working_link_that_expires(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS, monkeypatch: pytest.MonkeyPatch
) -> None:
    tg.add_file("BQACAgIAAxkBAAIC_pdf", PDF, "documents/file_3.pdf")
    await bridge.deliver_update(document())
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    [text] = relayed(ocs)
    caption, link = text.split("\n\n")
    assert caption == "Please check my invoice"
    prefix = f"[invoice.pdf]({bridge.public_url}"
    assert link.startswith(prefix) and link.endswith("/invoice.pdf)")
    path = link[len(prefix) : -1]
    response = await bridge.client.get(path)
    assert response.status == 200 and await response.read() == PDF
    assert response.headers["Content-Type"] == "application/pdf"  # sniffed from the bytes
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''invoice.pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert (await bridge.client.get(path.replace("invoice.pdf", "other.pdf"))).status == 404
    later = datetime.now(UTC) + timedelta(hours=24, minutes=1)  # MEDIA_LINK_HOURS' default
    monkeypatch.setattr(links, "now", lambda: later)
    assert (await bridge.client.get(path)).status == 404


async def test_the_link_is_not_the_message_id_and_the_token_is_never_logged(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS, captured: io.StringIO
) -> None:
    everything_at_debug()
    tg.add_file("BQACAgIAAxkBAAIC_pdf", PDF, "documents/file_3.pdf")
    await bridge.deliver_update(document())
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    [text] = relayed(ocs)
    token = tg.token.split(":", 1)[1]
    assert token not in text and "file_3" not in text and "BQAC" not in text
    output = captured.getvalue()
    assert "file fetched" in output and token not in output and "/file/bot" not in output


async def test_a_file_too_large_gets_the_limit_and_no_bot_call(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS
) -> None:
    await bridge.deliver_update(document(file_size=25_000_000))
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    assert "20 MB" in tg.texts(42)[0]
    assert relayed(ocs) == [] and ocs.sessions == {} and tg.downloads == []
    [letter] = await bridge.core.store.dead_letters()
    assert "larger than 20 MB" in letter.reason
    # Telegram's own refusal (the update did not say the size) is the same answer
    tg.add_file("big", b"x" * (20_000_001), "documents/big.bin")
    await bridge.deliver_update(document("big", file_size=None))
    await tg.wait_for(lambda: len(tg.texts(42)) == 2)
    assert "20 MB" in tg.texts(42)[1] and relayed(ocs) == []


async def test_a_file_gone_gets_a_short_answer_and_a_dead_letter(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS
) -> None:
    await bridge.deliver_update(document("unknown"))
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    assert "could not get the file" in tg.texts(42)[0]
    [letter] = await bridge.core.store.dead_letters()
    assert "invalid file_id" in letter.reason.lower() and relayed(ocs) == []


async def test_a_retried_message_does_not_download_again(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS
) -> None:
    tg.add_file("BQACAgIAAxkBAAIC_pdf", PDF, "documents/file_3.pdf")
    ocs.fail_next(503)
    await bridge.deliver_update(document())
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    attempts = [c.json["message"] for c in ocs.calls if c.path.endswith("/incoming_message")]
    assert len(attempts) == 2 and attempts[0] == attempts[1]  # the same link both times
    assert tg.downloads == ["documents/file_3.pdf"]


async def test_a_voice_note_alone_is_unsupported_until_speech_to_text(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS
) -> None:
    await bridge.deliver_update(payload("voice"))
    await tg.wait_for(lambda: tg.texts(42) == ["I read text only."])
    assert relayed(ocs) == [] and tg.downloads == []


@pytest.mark.parametrize("bridge_env", [{"MEDIA_AS_LINKS": "off", "TEXT_UNSUPPORTED": "I read text only."}])
async def test_with_media_as_links_off_the_caption_alone_is_relayed(
    bridge: Harness, tg: FakeTelegram, ocs: FakeOCS
) -> None:
    tg.add_file("BQACAgIAAxkBAAIC_pdf", PDF, "documents/file_3.pdf")
    await bridge.deliver_update(document())
    await tg.wait_for(lambda: len(tg.texts(42)) == 1)
    await bridge.deliver_update(document(caption=""))
    await tg.wait_for(lambda: len(tg.texts(42)) == 2)
    assert tg.texts(42) == ["bot: Please check my invoice", "I read text only."]
    assert relayed(ocs) == ["Please check my invoice"] and tg.downloads == []
