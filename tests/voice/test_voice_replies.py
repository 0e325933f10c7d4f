"""Answers in voice (``VOICE_REPLIES``): the fake speech server speaks real OGG/Opus, the bridge
serves it, and the platform (the recording channel, the fake Bot API) gets a voice note."""

from __future__ import annotations

import os
import time
from urllib.parse import urlparse

from fakes.telegram import text_update
from fakes.twilio import sms, whatsapp
from tests.harness import eventually, platform_bridge
from tests.voice.helpers import PUBLIC_URL, say_note
from tests.voice.sounds import codec_of, length


def sent(h, sender):  # (text, [attachment content types]) of each part sent, in order
    return [
        (part.text, [a.content_type for a in part.attachments]) for to, part in h.channel.sent if to == sender
    ]


async def fetched(client, url: str) -> bytes:
    """What a platform gets from the bridge for a voice note's link."""
    path = urlparse(url).path
    assert path.startswith("/voice/") and path.endswith(".ogg")
    response = await client.get(path)
    assert response.status == 200 and response.content_type == "audio/ogg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return await response.read()


async def test_reciprocal_answers_a_voice_note_with_a_voice_note(voice_bridge, speech, notes):
    h = await voice_bridge(voice=True, voice_replies="reciprocal", tts_voice="nova")
    await say_note(h, "ann", notes["time"].ogg, ref="n1")
    await h.replies("ann", 1)
    await h.idle()
    assert sent(h, "ann") == [("", ["audio/ogg"])]  # a short answer: the voice note alone
    [spoken] = speech.speeches
    assert spoken.params == {
        "model": "tts-1",
        "voice": "nova",
        "input": "bot: what time is it",
        "response_format": "opus",
    }
    [(_, part)] = h.channel.sent
    assert part.attachments[0].url.startswith(f"{PUBLIC_URL}/voice/")
    audio = await fetched(h.client, part.attachments[0].url)
    assert codec_of(audio) == ("ogg", "opus") and length(audio) > 0.5

    assert await h.say("ann", "typed") == 200  # the person typed: text, as before
    assert (await h.replies("ann", 2))[1] == "bot: typed"
    assert len(speech.speeches) == 1


async def test_a_long_answer_or_one_with_a_link_is_sent_as_text_too(voice_bridge, notes, ocs):
    h = await voice_bridge(voice=True, voice_replies="always", voice_reply_max_chars=40)
    ocs.reply = lambda text, session: "See https://example.org/hours" if text == "link" else f"bot: {text}"
    await say_note(h, "bob", notes["time"].ogg, ref="n1")
    assert await h.say("bob", "link") == 200
    assert await h.say("bob", "x" * 50) == 200
    await h.replies("bob", 5)
    await h.idle()
    assert sent(h, "bob") == [
        ("", ["audio/ogg"]),
        ("", ["audio/ogg"]),
        ("See https://example.org/hours", []),
        ("", ["audio/ogg"]),
        ("bot: " + "x" * 50, []),
    ]


async def test_echo_comes_first_and_where_voice_cannot_go_the_answer_is_text(voice_bridge, speech, notes):
    h = await voice_bridge(voice=False, voice_replies="always", texts={"voice_echo": "I heard: {text}"})
    await say_note(h, "cal", notes["time"].ogg, ref="n1")
    assert await h.replies("cal", 2) == ["I heard: what time is it", "bot: what time is it"]
    assert speech.speeches == []  # nothing spoken for a channel that cannot send it


async def test_when_speech_fails_the_answer_goes_as_text(voice_bridge, speech, notes):
    h = await voice_bridge(voice=True, voice_replies="reciprocal", tts_api_key="sk-wrong")
    await say_note(h, "dan", notes["time"].ogg, ref="n1")
    assert await h.replies("dan", 1) == ["bot: what time is it"]
    assert [s.status for s in speech.speeches] == [401]
    metrics = (await (await h.client.get("/metrics")).text()).splitlines()
    assert 'bridge_voice_failures_total{channel="test",stage="tts"} 1.0' in metrics


async def test_voice_links_are_unguessable_and_expire(voice_bridge, notes, tmp_path):
    h = await voice_bridge(voice=True, voice_replies="reciprocal")
    await say_note(h, "eve", notes["time"].ogg, ref="n1")
    await h.replies("eve", 1)
    [(_, part)] = h.channel.sent
    path = urlparse(part.attachments[0].url).path
    token = path.removeprefix("/voice/").removesuffix(".ogg")
    assert len(token) == 32
    for guess in ("/voice/1.ogg", "/voice/..%2Fbridge.db.ogg", f"/voice/{token[:-1]}A.ogg"):
        assert (await h.client.get(guess)).status == 404
    assert (await h.client.get(path)).status == 200
    [file] = (tmp_path / "data" / "voice").glob("*.ogg")
    old = time.time() - 3 * 24 * 3600
    os.utime(file, (old, old))
    assert (await h.client.get(path)).status == 404


async def test_telegram_gets_a_send_voice_whose_file_is_opus_audio(tmp_path, tg, ocs, speech):
    env = {
        "STT_BASE_URL": speech.url,
        "STT_API_KEY": speech.api_key,
        "VOICE_REPLIES": "always",
        "DATA_DIR": str(tmp_path / "data"),
    }
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tg=tg, **env) as h:
        await h.deliver_update(text_update("what time is it", chat_id=42))
        await tg.wait_for(lambda: tg.calls("sendVoice"))
        await h.idle()
        [call] = tg.calls("sendVoice")
        assert call.chat_id == "42" and tg.texts(42) == []
        audio = await fetched(h.client, call.params["voice"])
        assert codec_of(audio) == ("ogg", "opus") and length(audio) > 0.5


async def test_whatsapp_gets_the_voice_note_as_media_and_sms_gets_text(tmp_path, tw, ocs, speech):
    env = {
        "STT_BASE_URL": speech.url,
        "STT_API_KEY": speech.api_key,
        "VOICE_REPLIES": "always",
        "DATA_DIR": str(tmp_path / "data"),
        "TWILIO_FROM_NUMBER": "+15557654321",
    }
    async with platform_bridge(tmp_path / "bridge.db", ocs=ocs, tw=tw, **env) as h:
        await h.deliver_form(whatsapp("what time is it"))
        await h.deliver_form(sms("and by text?"))
        await eventually(lambda: len(tw.sent()) == 2)
        await h.idle()
        [spoken] = tw.sent("whatsapp:+15551230001")
        assert spoken.body == "" and len(spoken.media) == 1
        audio = await fetched(h.client, spoken.media[0])
        assert codec_of(audio) == ("ogg", "opus")
        assert tw.bodies("+15551230001") == ["bot: and by text?"]
