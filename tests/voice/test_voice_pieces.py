"""The voice pieces on their own: audio measured and converted (PyAV), the speech clients' answers
to failures, the transcript kept in the store (SQLite and PostgreSQL), and ``chatbridge check``."""

from __future__ import annotations

import asyncio
import io
import os
import sys

import av
import pytest
from pydantic import SecretStr

from bridge.model import InboundMessage, Person
from bridge.store.transcripts import heard, save
from bridge.voice import audio
from bridge.voice import speech as client
from fakes.server import free_port
from tests.proc import ROOT
from tests.voice.helpers import say_note
from tests.voice.sounds import codec_of, encode, length


def test_length_comes_from_the_audio_not_from_what_the_platform_claims(notes):
    note = notes["hours"]
    for data in (note.wav, note.ogg, note.amr):
        sound = audio.measure(data, limit=300)
        assert abs(sound.seconds - note.seconds) < 0.1 and not sound.over
    assert audio.measure(note.ogg, limit=2).over  # decoding stops past the limit
    with pytest.raises(audio.AudioError):
        audio.measure(b"OggS" + bytes(5000), limit=300)


def test_formats_the_endpoint_does_not_take_are_converted_to_opus(notes):
    note = notes["time"]
    three_gp = encode(note.wav, "3gp", "libopencore_amrnb", 8_000)  # MMS's other kind of AMR
    video_note = _video_note(note.wav)
    for data, extension in (
        (note.ogg, "ogg"),
        (note.wav, "wav"),
        (note.amr, None),
        (three_gp, None),
        (video_note, None),
    ):
        assert audio.measure(data, 300).extension == extension
    for data in (note.amr, three_gp, video_note):
        converted = audio.to_ogg_opus(data)
        assert codec_of(converted) == ("ogg", "opus")
        assert abs(length(converted) - note.seconds) < 0.1


async def test_speech_failures_say_whether_to_retry_and_when(speech, notes):
    key = SecretStr(speech.api_key)
    cases = [(429, 7.0, True), (500, None, True), (400, None, False)]
    for status, retry_after, retryable in cases:
        speech.fail(status, retry_after=retry_after)
        with pytest.raises(client.SpeechError) as failed:
            await client.transcribe(speech.url, key, notes["time"].ogg, "voice.ogg", model="whisper-1")
        assert (failed.value.retryable, failed.value.retry_after) == (retryable, retry_after)
        assert f"speech-to-text answered {status}: scripted {status}" == failed.value.reason
    with pytest.raises(client.SpeechError) as failed:
        await client.transcribe(f"http://127.0.0.1:{free_port()}/v1", key, b"x", "voice.ogg", model="m")
    assert failed.value.retryable and "cannot reach speech-to-text" in failed.value.reason
    heard_now = await client.transcribe(
        speech.url, key, notes["time"].ogg, "voice.ogg", model="whisper-1", language="en"
    )
    assert heard_now == "what time is it" and speech.transcriptions[-1].language == "en"


async def test_retries_used_up_give_the_voice_apology_and_a_dead_letter(voice_bridge, speech, notes):
    h = await voice_bridge(worker={"max_attempts": 2})
    speech.fail(500, times=5)
    await say_note(h, "ann", notes["time"].ogg, ref="n1")
    [answer] = await h.replies("ann", 1)
    assert answer.startswith("Sorry, I could not make out that voice message")
    await h.idle()
    assert [c.status for c in speech.transcriptions] == [500, 500]
    [letter] = await h.core.store.dead_letters()
    assert letter.reason == "speech-to-text answered 500: scripted 500"


async def test_a_transcript_is_merged_into_the_message_context(store):
    person = Person(key="p1", address="p1")
    accepted = await store.accept(InboundMessage("test", "m1", person, context={"kept": 1}))
    await store.writer(lambda c: save(c, accepted.message_id, "ref-1", "hello\x00"))
    await store.writer(lambda c: save(c, accepted.message_id, "ref-2", "again"))
    message = await store.message(accepted.public_id)
    assert message.context["kept"] == 1
    assert heard(message.context) == {"ref-1": "hello", "ref-2": "again"}


async def test_check_says_whether_voice_notes_are_heard(tmp_path):
    off = await _check(tmp_path)
    assert "ok    bot 'default' voice notes: off (voice notes get TEXT_UNSUPPORTED" in off, off
    on = await _check(tmp_path, STT_API_KEY="sk-secret-value", STT_LANGUAGE="fr", VOICE_REPLIES="reciprocal")
    assert (
        "voice notes: whisper-1 at https://api.openai.com/v1, language fr, answers in voice: reciprocal" in on
    )
    assert "sk-secret-value" not in on


async def _check(tmp_path, **env: str) -> str:
    environ = {"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db", **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "check", env=environ, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return output.decode()


def _video_note(wav: bytes) -> bytes:
    """A round video note's shape: MP4 with a video stream and AAC sound."""
    output = io.BytesIO()
    with av.open(io.BytesIO(wav)) as source, av.open(output, mode="w", format="mp4") as target:
        video = target.add_stream("mpeg4", rate=10)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        sound = target.add_stream("aac", rate=44_100, layout="mono")
        for index in range(10):
            frame = av.VideoFrame(64, 64, "yuv420p")
            frame.pts = index
            target.mux(video.encode(frame))
        target.mux(video.encode(None))
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=44_100)
        for frame in [*source.decode(audio=0), None]:
            for mono in resampler.resample(frame):
                target.mux(sound.encode(mono))
        target.mux(sound.encode(None))
    return output.getvalue()
