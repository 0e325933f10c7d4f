"""The worker's step before relaying a message with files (``ConversationRun._relay``): what the
bot is sent. A bot that ``accepts_files`` gets the fetched files and the caption; any other gets
the caption with a named link per file (``MEDIA_AS_LINKS``, on by default), else the caption alone.

Voice notes (kinds in ``VOICE``) are not fetched here: they are left in ``Outgoing.voice`` for
speech to text (``fetch_file`` gets one to disk, ``index`` being its place in ``message.media``);
until something reads them, a message that is only a voice note is unsupported."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import structlog

from bridge.bots import Bot, BotError
from bridge.channel import Channel, SendError
from bridge.media.download import FileTooLarge, megabytes
from bridge.media.links import with_links
from bridge.media.store import Stored, media_store
from bridge.model import Conversation, LocalFile, Media
from bridge.settings import Settings
from bridge.store.records import StoredMessage

log = structlog.get_logger("bridge.media")

VOICE = frozenset({"voice", "video_note"})  # Telegram voice notes and round videos; Twilio audio


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What goes to the bot for one message."""

    text: str
    files: tuple[LocalFile, ...] = ()
    voice: tuple[Media, ...] = ()  # voice notes, not fetched: for speech to text


class Refused(Exception):
    """The message cannot go to the bot: the person gets ``answer``; with a ``reason``, the message
    is kept as a dead letter (a file that can never be fetched)."""

    def __init__(self, answer: str, reason: str | None = None):
        super().__init__(reason or answer)
        self.answer = answer
        self.reason = reason


async def outgoing(
    settings: Settings, channel: Channel, bot: Bot, conversation: Conversation, message: StoredMessage
) -> Outgoing:
    """The text and files for the bot. ``Refused`` when nothing can reach it, or a file can never
    be fetched; ``BotError(retryable=True)`` when fetching may work later."""
    media = message.media
    if not media:
        return Outgoing(message.text)
    wanted = bot.accepts_files or settings.media_as_links
    fetched = [
        await fetch_file(settings, channel, conversation, message, index, item)
        for index, item in enumerate(media)
        if wanted and item.kind not in VOICE
    ]
    voice = tuple(item for item in media if item.kind in VOICE)
    if bot.accepts_files:
        out = Outgoing(message.text, tuple(f.file for f in fetched), voice)
    else:
        out = Outgoing(with_links(message.text, settings.base_url, fetched), (), voice)
    if not out.text.strip() and not out.files:
        raise Refused(channel.texts.unsupported)
    return out


async def prepare(
    settings: Settings, channel: Channel, bot: Bot, conversation: Conversation, message: StoredMessage
) -> tuple[StoredMessage, tuple[LocalFile, ...]]:
    """``outgoing`` as the run uses it: the message with the text the bot is sent (its recovery
    after a crash looks for that text), and the files."""
    out = await outgoing(settings, channel, bot, conversation, message)
    return dataclasses.replace(message, text=out.text), out.files


async def fetch_file(
    settings: Settings,
    channel: Channel,
    conversation: Conversation,
    message: StoredMessage,
    index: int,
    media: Media,
) -> Stored:
    """The message's ``index``-th file (its place in ``message.media``) on disk, fetched once for
    every attempt. ``Refused`` when it can never be fetched, ``BotError(retryable=True)`` when a
    later attempt may succeed."""
    store = media_store(settings.data_dir)
    try:
        stored = await store.fetch(channel, conversation.person.key, message.id, index, media)
    except FileTooLarge as exc:
        log.info("file too large", kind=media.kind, limit=exc.limit)
        raise Refused(channel.texts.too_large.replace("{limit}", megabytes(exc.limit)), exc.reason) from None
    except SendError as exc:
        if exc.final:
            log.warning("file cannot be fetched", kind=media.kind, reason=exc.reason)
            raise Refused(channel.texts.file_lost, exc.reason) from None
        raise BotError(exc.reason, retryable=True, retry_after=exc.retry_after) from None
    file = stored.file
    log.info("file fetched", kind=media.kind, content_type=file.content_type, size=file.size)
    return stored
