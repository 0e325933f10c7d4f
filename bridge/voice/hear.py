"""Hearing a person's voice notes, in the worker: each note's bytes fetched from the platform (in
memory: notes are small), its real length measured, converted if the endpoint would not take it,
transcribed, and the transcript stored with the message at once. A note already heard (a retry,
a crash before the bot answered) is never sent to the endpoint again."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from bridge.bots import BotError
from bridge.channel import Channel, SendError
from bridge.media.relay import Refused
from bridge.model import Media
from bridge.store import transcripts
from bridge.voice import audio, speech

if TYPE_CHECKING:
    from bridge.core import Core
    from bridge.settings import BotSettings
    from bridge.store import StoredMessage

log = structlog.get_logger("bridge.voice")

MAX_NOTE_BYTES = 25 * 1024 * 1024  # what OpenAI's endpoint takes; a 5-minute note is ~1 MB
VOICE_KINDS = frozenset({"voice", "audio", "video_note"})


def is_voice(media: Media) -> bool:
    """A voice note or audio message (Telegram voice/audio/video_note, Twilio ``audio/*``)."""
    return media.kind in VOICE_KINDS or media.content_type.lower().startswith("audio/")


@dataclass(frozen=True, slots=True)
class Listener:
    """Hears the voice notes of one message for one channel and its bot's settings."""

    core: Core
    channel: Channel
    settings: BotSettings

    async def hear(self, message: StoredMessage, notes: list[Media]) -> list[str]:
        """What each note said, in order. Raise ``Refused`` (an answer instead of the bot's; with a
        reason, a dead letter), or a retryable ``BotError`` (429, 5xx, timeouts: the message is
        tried again later, in order)."""
        known = transcripts.heard(message.context)
        said = []
        for note in notes:
            text = known.get(note.ref)
            if text is None:
                text = await self._transcribe(message, note)
                write = functools.partial(transcripts.save, message_id=message.id, ref=note.ref, text=text)
                await self.core.store.writer(write)
            said.append(text)
        return said

    async def _transcribe(self, message: StoredMessage, note: Media) -> str:
        settings, metrics = self.settings, self.core.metrics
        data = await self._fetch(message, note)
        try:
            sound = await asyncio.to_thread(audio.measure, data, settings.voice_max_seconds)
        except audio.AudioError as exc:
            raise self._failed("audio", f"voice note unreadable: {exc}") from None
        if sound.over:
            log.info("voice note too long", limit=settings.voice_max_seconds)
            metrics.voice_failures.labels(self.channel.name, "too_long").inc()
            limit = f"{settings.voice_max_seconds:g}"
            raise Refused(self.channel.texts.voice_too_long.replace("{limit}", limit))
        extension = sound.extension
        if extension is None:  # AMR/3GPP from MMS, a video note: its sound as OGG/Opus
            data, extension = await asyncio.to_thread(audio.to_ogg_opus, data), "ogg"
        try:
            text = await speech.transcribe(
                settings.stt_base_url,
                settings.stt_api_key,
                data,
                f"voice.{extension}",
                model=settings.stt_model,
                language=settings.stt_language,
            )
        except speech.SpeechError as exc:
            if exc.retryable and message.attempts + 1 < self.core.settings.worker.max_attempts:
                metrics.voice_failures.labels(self.channel.name, "stt").inc()
                raise BotError(exc.reason, retryable=True, retry_after=exc.retry_after) from None
            raise self._failed("stt", exc.reason) from None
        if not text:
            raise self._failed("stt", "speech-to-text heard nothing in the voice note")
        metrics.voice_notes.labels(self.channel.name).inc()
        metrics.voice_seconds.labels(self.channel.name).inc(sound.seconds)
        log.info(
            "voice note transcribed", seconds=round(sound.seconds, 1), converted=extension != sound.extension
        )
        return text

    async def _fetch(self, message: StoredMessage, note: Media) -> bytes:
        """The note's bytes, in memory (at most ``MAX_NOTE_BYTES``)."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in self.channel.fetch(note, MAX_NOTE_BYTES):
                size += len(chunk)
                if size > MAX_NOTE_BYTES:
                    raise SendError(f"voice note larger than {MAX_NOTE_BYTES} bytes", final=True)
                chunks.append(chunk)
        except SendError as exc:
            if not exc.final and message.attempts + 1 < self.core.settings.worker.max_attempts:
                self.core.metrics.voice_failures.labels(self.channel.name, "fetch").inc()
                raise BotError(exc.reason, retryable=True, retry_after=exc.retry_after) from None
            raise self._failed("fetch", f"voice note not fetched: {exc.reason}") from None
        return b"".join(chunks)

    def _failed(self, stage: str, reason: str) -> Refused:
        log.warning("voice note not heard", stage=stage, reason=reason)
        self.core.metrics.voice_failures.labels(self.channel.name, stage).inc()
        return Refused(self.channel.texts.voice_failed, reason)
