"""Voice notes: people speak, the bot reads (speech to text, in the worker), and it may answer in
voice (text to speech). See ``step`` for how a message goes through it."""

from __future__ import annotations

from bridge.settings import BotSettings
from bridge.voice.files import install
from bridge.voice.step import relay

__all__ = ["describe", "install", "relay"]


def describe(settings: BotSettings) -> str:
    """One line for ``chatbridge check``: whether voice notes are heard, and by what."""
    if not settings.hears:
        return "off (voice notes get TEXT_UNSUPPORTED; set STT_API_KEY or STT_BASE_URL to hear them)"
    language = settings.stt_language or "detected"
    replies = f"answers in voice: {settings.voice_replies}"
    return f"{settings.stt_model} at {settings.stt_base_url}, language {language}, {replies}"
