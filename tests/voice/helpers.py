"""Helpers of the voice tests: a bot's settings that hear through the fake, a voice note sent."""

from __future__ import annotations

from typing import Any

from fakes.speech import FakeSpeech
from tests.harness import Harness

PUBLIC_URL = "http://bridge.test"


def voice_settings(speech: FakeSpeech, **overrides: Any) -> dict[str, Any]:
    """A bot's settings that hear voice notes (and speak) through the fake."""
    return {"stt_base_url": speech.url, "stt_api_key": speech.api_key, "stt_model": "whisper-1"} | overrides


async def say_note(
    h: Harness, sender: str, note: bytes, *, ref: str, kind: str = "voice", **extra: Any
) -> None:
    """The person sends a voice note (its bytes registered with the channel, fetched by ref)."""
    h.channel.files[ref] = note
    media = [{"kind": kind, "ref": ref, "content_type": extra.pop("content_type", "audio/ogg")}]
    assert await h.say(sender, extra.pop("text", ""), media=media, **extra) == 200
