"""Media on SMS and WhatsApp: MediaUrlN as Media, fetched with the account's basic auth (which
must not follow Twilio's redirect to its storage host), relayed to a text-only bot as links."""

from __future__ import annotations

import pytest

from adapters.twilio import parse
from bridge.model import Kind
from fakes.ocs import FakeOCS
from fakes.twilio import FakeTwilio, payload
from tests.harness import Harness

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PERSON = "whatsapp:+15551230001"


@pytest.fixture
def bridge_env() -> dict[str, str]:
    return {"TEXT_UNSUPPORTED": "I read text only."}


def relayed(ocs: FakeOCS) -> list[str]:
    return [c.json["message"] for c in ocs.calls if c.path.endswith("/incoming_message")]


def test_every_media_url_up_to_ten_is_a_file() -> None:
    form = payload("whatsapp_image", NumMedia="12")
    for i in range(12):
        form[f"MediaUrl{i}"] = f"https://api.twilio.com/media/{i}"
        form[f"MediaContentType{i}"] = "audio/ogg" if i == 1 else "image/png"
    [message] = parse.messages(form, "twilio")
    assert message.kind is Kind.TEXT and message.text == ""
    assert [m.ref for m in message.media] == [f"https://api.twilio.com/media/{i}" for i in range(10)]
    assert [m.kind for m in message.media][:3] == ["image", "voice", "image"]  # audio: a voice note


async def test_a_whatsapp_image_reaches_the_bot_as_a_link_to_the_same_bytes(
    bridge: Harness, tw: FakeTwilio, ocs: FakeOCS
) -> None:
    url = tw.add_media(PNG, "image/png")
    await bridge.deliver_form(payload("whatsapp_image", MediaUrl0=url, MediaContentType0="image/png"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
    [text] = relayed(ocs)
    prefix = f"[image.png]({bridge.public_url}"
    assert text.startswith(prefix) and text.endswith(")")
    response = await bridge.client.get(text[len(prefix) : -1])
    assert response.status == 200 and await response.read() == PNG
    assert len(tw.downloads) == 1  # the storage host served it, and got no credentials (it refuses them)
    assert tw.bodies(PERSON) == [f"bot: {text}"]


async def test_media_refused_for_good_gets_a_short_answer(
    bridge: Harness, tw: FakeTwilio, ocs: FakeOCS
) -> None:
    gone = tw.add_media(PNG, "image/png").replace("/Media/ME", "/Media/MEgone")
    await bridge.deliver_form(payload("whatsapp_image", MediaUrl0=gone))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
    assert "could not get the file" in tw.bodies(PERSON)[0] and relayed(ocs) == []
    [letter] = await bridge.core.store.dead_letters()
    assert "gone (404)" in letter.reason


async def test_an_audio_message_alone_is_left_for_speech_to_text(
    bridge: Harness, tw: FakeTwilio, ocs: FakeOCS
) -> None:
    url = tw.add_media(b"OggS\x00\x02" + b"\x00" * 40, "audio/ogg")
    await bridge.deliver_form(payload("whatsapp_image", MediaUrl0=url, MediaContentType0="audio/ogg"))
    await tw.wait_for(lambda: tw.bodies(PERSON) == ["I read text only."])
    assert relayed(ocs) == [] and tw.downloads == []
