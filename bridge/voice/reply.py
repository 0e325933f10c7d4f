"""Answers in voice (``VOICE_REPLIES``): the bot's answer spoken by the text-to-speech endpoint,
sent as a real voice note (an OGG/Opus attachment the platform fetches from the bridge), with the
text as well when it holds a link or is long. Where a voice note cannot go (SMS, the widget,
WhatsApp outside its 24-hour window, no ``PUBLIC_URL`` to fetch it from), or speech fails, the
answer goes as text, as it would without voice."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from bridge.model import Attachment, Conversation
from bridge.voice import audio, files, speech

if TYPE_CHECKING:
    from bridge.channel import Channel
    from bridge.core import Core
    from bridge.settings import BotSettings
    from bridge.shape import Parts

log = structlog.get_logger("bridge.voice")

MAX_SPOKEN = 4096  # characters OpenAI's endpoint speaks at once: a longer answer goes as text
VOICE_TYPE = "audio/ogg"  # how a part's voice note is told apart from other attachments
_LINK = re.compile(r"https?://|www\.|\]\(", re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#>~]+")  # Markdown the bot may use: not to be read out


def wanted(settings: BotSettings, spoke: bool) -> bool:
    return settings.voice_replies == "always" or (settings.voice_replies == "reciprocal" and spoke)


async def speak(
    core: Core, channel: Channel, conversation: Conversation, settings: BotSettings, parts: Parts
) -> Parts:
    """``parts`` with the answer's text as a voice note first (and the text kept after it when it
    has a link or is longer than ``VOICE_REPLY_MAX_CHARS``); ``parts`` unchanged where voice
    cannot go."""
    text = "\n\n".join(t for t, _ in parts if t.strip())
    if not text or len(text) > MAX_SPOKEN or not core.settings.public_url or not channel.speaks(conversation):
        return parts
    try:
        spoken = await speech.synthesize(
            settings.speech_url,
            settings.speech_key,
            _MARKUP.sub("", text),
            model=settings.tts_model,
            voice=settings.tts_voice,
        )
        note = await asyncio.to_thread(_opus, spoken)
    except (speech.SpeechError, audio.AudioError) as exc:
        log.warning("answer not spoken; sent as text", reason=str(exc))
        core.metrics.voice_failures.labels(channel.name, "tts").inc()
        return parts
    token = await asyncio.to_thread(files.save, Path(core.settings.data_dir), note)
    url = f"{core.settings.base_url}/voice/{token}.ogg"
    voice = ("", (Attachment(name="voice.ogg", url=url, content_type=VOICE_TYPE, size=len(note)),))
    core.metrics.voice_replies.labels(channel.name).inc()
    if _LINK.search(text) or len(text) > settings.voice_reply_max_chars:
        return [voice, *parts]
    return [voice, *[("", attachments) for _, attachments in parts if attachments]]


def _opus(data: bytes) -> bytes:
    """The endpoint's audio as OGG/Opus (converted when a server answered another format)."""
    sound = audio.measure(data, float("inf"))
    return data if (sound.container, sound.codec) == ("ogg", "opus") else audio.to_ogg_opus(data)
