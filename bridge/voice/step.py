"""The worker's voice step around a message's relay: voice notes heard before the bot is called
(the bot receives what was said, with the caption), ``TEXT_VOICE_ECHO`` before the answer, and
the answer spoken (``VOICE_REPLIES``)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

from bridge.bots import Bot
from bridge.channel import Channel
from bridge.model import Kind
from bridge.store.records import MEDIA_KEY
from bridge.voice.hear import Listener, is_voice
from bridge.voice.reply import speak, wanted

if TYPE_CHECKING:
    from bridge.core import Core
    from bridge.shape import Parts
    from bridge.store import StoredMessage
    from bridge.store.queue import Claim


class Run(Protocol):
    """The conversation run, as the voice step sees it (``bridge.conversation.ConversationRun``)."""

    core: Core
    claim: Claim

    def _texts(self, text: str) -> Parts: ...

    async def _relay(
        self, bot: Bot, channel: Channel, message: StoredMessage
    ) -> tuple[Parts, str | None]: ...


async def relay(run: Run, bot: Bot, channel: Channel, message: StoredMessage) -> tuple[Parts, str | None]:
    """What ``run._relay`` gives (the answer's parts, a session handed to a human agent now). A
    voice note that cannot be heard raises ``Refused`` (the answer to give, and why)."""
    settings = run.core.settings.bots[channel.bot]
    notes = [media for media in message.media if is_voice(media)]
    said: list[str] = []
    if notes and settings.hears:
        said = await Listener(run.core, channel, settings).hear(message, notes)
        message = _heard(message, said)
    elif notes and len(notes) == len(message.media) and not message.text.strip():
        return run._texts(channel.texts.unsupported), None  # voice off: as before
    parts, handed_off = await run._relay(bot, channel, message)
    if handed_off is None and message.kind == Kind.TEXT and wanted(settings, spoke=bool(said)):
        parts = await speak(run.core, channel, run.claim.conversation, settings, parts)
    echo = channel.texts.voice_echo
    if said and echo:
        parts = run._texts(echo.replace("{text}", " ".join(said))) + parts
    return parts, handed_off


def _heard(message: StoredMessage, said: list[str]) -> StoredMessage:
    """The message as the bot receives it: the caption and what was said, without the notes."""
    items = message.context.get(MEDIA_KEY) or []
    others = [item for item, media in zip(items, message.media, strict=True) if not is_voice(media)]
    text = "\n\n".join(filter(None, [message.text.strip(), *said]))
    return dataclasses.replace(message, text=text, context={**message.context, MEDIA_KEY: others})
