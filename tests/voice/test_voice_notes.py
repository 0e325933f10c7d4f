"""Voice notes heard: real audio through the real app, the recording channel, the fake OCS and the
fake speech server (which decodes what it receives)."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import select

from bridge.store.records import MESSAGE, to_message
from bridge.store.transcripts import heard
from bridge.voice import speech as client
from fakes.channel import RecordingChannel
from fakes.speech import tone
from tests.harness import ocs_bot
from tests.voice.helpers import say_note


def incoming(ocs) -> list[str]:  # what the bot was asked, in order
    return [c.json["message"] for c in ocs.calls if c.path.endswith("/incoming_message")]


async def test_an_ogg_voice_note_reaches_the_bot_as_what_was_said(voice_bridge, speech, notes):
    h = await voice_bridge()
    await say_note(h, "ann", notes["time"].ogg, ref="note-1")
    assert await h.replies("ann", 1) == ["bot: what time is it"]
    await h.idle()
    assert h.channel.texts_to("ann") == ["bot: what time is it"]
    [call] = speech.transcriptions
    assert (call.status, call.filename, call.model) == (200, "voice.ogg", "whisper-1")
    assert abs(call.seconds - notes["time"].seconds) < 0.1  # the whole note, decoded by the fake
    message = await _only_message(h)
    assert heard(message.context) == {"note-1": "what time is it"}  # kept with the message
    metrics = (await (await h.client.get("/metrics")).text()).splitlines()
    assert 'bridge_voice_notes_transcribed_total{channel="test"} 1.0' in metrics


async def test_an_amr_note_from_mms_is_converted_before_it_is_sent(voice_bridge, speech, notes, ocs):
    h = await voice_bridge()
    await say_note(h, "bob", notes["hours"].amr, ref="mms-1", kind="audio", content_type="audio/amr")
    assert await h.replies("bob", 1) == [f"bot: {notes['hours'].phrase}"]
    [call] = speech.transcriptions
    assert call.status == 200 and call.filename == "voice.ogg"  # AMR is not taken as it is
    assert abs(call.seconds - notes["hours"].seconds) < 0.3


async def test_the_fake_refuses_amr_sent_as_it_is(speech, notes):
    """The fake would catch a bridge that sent the AMR bytes unconverted (under any name)."""
    key = SecretStr(speech.api_key)
    for name in ("voice.amr", "voice.ogg"):
        try:
            await client.transcribe(speech.url, key, notes["hours"].amr, name, model="whisper-1")
        except client.SpeechError as exc:
            assert "400" in exc.reason and not exc.retryable
        else:
            raise AssertionError(f"{name}: AMR was taken")


async def test_the_caption_goes_with_what_was_said(voice_bridge, notes, ocs):
    h = await voice_bridge()
    await say_note(h, "cat", notes["time"].ogg, ref="n1", text="Question:")
    await h.replies("cat", 1)
    assert incoming(ocs) == ["Question:\n\nwhat time is it"]


async def test_echo_shows_what_was_understood_before_the_answer(voice_bridge, notes):
    h = await voice_bridge(texts={"voice_echo": "I heard: {text}"})
    await say_note(h, "dee", notes["time"].ogg, ref="n1")
    assert await h.replies("dee", 2) == ["I heard: what time is it", "bot: what time is it"]
    assert await h.say("dee", "typed") == 200
    assert (await h.replies("dee", 3))[2] == "bot: typed"  # no echo for text


async def test_a_note_over_the_limit_gets_the_limit_and_costs_nothing(voice_bridge, speech, notes, ocs):
    h = await voice_bridge(voice_max_seconds=5)
    await say_note(h, "eve", notes["long"].ogg, ref="n1")
    [answer] = await h.replies("eve", 1)
    assert answer == "Sorry, I can only listen to voice messages up to 5 seconds long."
    await h.idle()
    assert speech.transcriptions == [] and incoming(ocs) == []
    assert await h.core.store.dead_letters() == []


async def test_429_then_success_gives_one_transcription_and_one_answer(voice_bridge, speech, notes, ocs):
    h = await voice_bridge()
    speech.fail(429, retry_after=1)
    await say_note(h, "fin", notes["time"].ogg, ref="n1")
    assert await h.replies("fin", 1) == ["bot: what time is it"]
    await h.idle()
    refused, taken = speech.transcriptions
    assert (refused.status, taken.status) == (429, 200)
    assert taken.at - refused.at >= 0.95  # Retry-After honoured (the worker's backoff is 0.05 s)
    assert speech.heard == ["what time is it"] and incoming(ocs) == ["what time is it"]
    assert h.channel.texts_to("fin") == ["bot: what time is it"]


async def test_notes_stay_in_order_while_one_is_retried(voice_bridge, speech, notes):
    h = await voice_bridge()
    speech.fail(500, times=2)
    await say_note(h, "gus", notes["time"].ogg, ref="n1")
    assert await h.say("gus", "and then this") == 200
    assert await h.replies("gus", 2) == ["bot: what time is it", "bot: and then this"]


async def test_a_crash_after_transcription_never_pays_for_the_note_twice(voice_bridge, speech, notes, ocs):
    h = await voice_bridge()
    ocs.fail_next(503)  # the transcript is stored, then the bot fails: the message is retried
    await say_note(h, "hal", notes["time"].ogg, ref="n1")
    assert await h.replies("hal", 1) == ["bot: what time is it"]
    await h.idle()
    assert len(h.channel.fetched) == 1 and speech.heard == ["what time is it"]
    assert len(speech.transcriptions) == 1


async def test_a_note_that_cannot_be_heard_gets_the_voice_apology_and_a_dead_letter(
    voice_bridge, speech, notes, ocs
):
    h = await voice_bridge(stt_api_key="sk-wrong")
    await say_note(h, "ida", notes["time"].ogg, ref="n1")
    [answer] = await h.replies("ida", 1)
    assert answer.startswith("Sorry, I could not make out that voice message")
    await h.idle()
    [letter] = await h.core.store.dead_letters()
    assert "speech-to-text answered 401" in letter.reason and "sk-wrong" not in letter.reason
    assert incoming(ocs) == []


async def test_silence_is_not_a_voice_note(voice_bridge, speech):
    h = await voice_bridge()
    await say_note(h, "jon", b"OggS" + bytes(2000), ref="n1")  # looks like OGG, is not audio
    [answer] = await h.replies("jon", 1)
    assert answer.startswith("Sorry, I could not make out")
    assert speech.transcriptions == []  # refused before it cost anything
    speech.register(1.5, "beep")
    await say_note(h, "jon", tone(1.5), ref="n2")  # real audio the fake knows: heard
    assert (await h.replies("jon", 2))[1] == "bot: beep"


async def test_without_speech_settings_a_voice_note_gets_todays_answer(bridge, fake_ocs, speech, notes, ocs):
    h = await bridge(channel=RecordingChannel(), bot=ocs_bot(fake_ocs))
    await say_note(h, "kim", notes["time"].ogg, ref="n1")
    [answer] = await h.replies("kim", 1)
    assert answer.startswith("Sorry, I can only read text messages")
    await h.idle()
    assert speech.transcriptions == [] and incoming(ocs) == [] and h.channel.fetched == []


async def _only_message(h):
    """The one message stored (as the worker reads it)."""
    async with h.core.store.reading() as session:
        row = (await session.execute(select(*MESSAGE))).one()
    return to_message(row._mapping)
