"""One person's data on request: erased (their OCS session ended first) or exported; and the
retention loop that empties old texts and files in a process that runs workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from bridge.bots import Bot, BotError
from bridge.channel import Channel
from bridge.logs import mask
from bridge.media.store import media_store, person_digest
from bridge.store import Store
from bridge.store import admin as records
from bridge.store.tables import utcnow

if TYPE_CHECKING:
    from bridge.core import Core

log = structlog.get_logger("bridge.admin")

RETENTION_IDLE = 60.0  # seconds between passes once nothing old is left
RETENTION_BUSY = 2.0  # seconds between batches while old texts remain (delivery keeps its pace)


@dataclass(frozen=True, slots=True)
class ErasedPerson:
    channel: str
    files: int
    session_ended: bool  # False: the bot could not be told (its reason is logged)


async def erase_person(
    store: Store,
    bots: Mapping[str, Bot],
    channels: Mapping[str, Channel],
    data_dir: Path,
    conversation_id: int,
) -> ErasedPerson | None:
    """End the person's bot session, then delete their messages, replies, data, schedules,
    conversation and files. None if there is no such conversation."""
    found = await records.conversation(store, conversation_id)
    if found is None:
        return None
    channel = channels.get(found.channel)
    bot = bots.get(channel.bot) if channel is not None else None
    ended = not found.session_id
    if found.session_id and bot is None:
        log.warning("bot session not ended on erase: its channel is not configured", channel=found.channel)
    elif found.session_id and bot is not None:
        try:
            await bot.end_session(found.session_id)
            ended = True
        except BotError as exc:
            log.warning("bot session not ended on erase", channel=found.channel, reason=str(exc))
    erased = await store.erase(conversation_id)
    if erased is None:
        return None
    media = media_store(str(data_dir))
    person = person_digest(erased.channel, erased.person_key)
    files = await asyncio.to_thread(media.remove, person=person)
    if channel is not None:
        files += await asyncio.to_thread(channel.remove_files, data_dir, person_key=erased.person_key)
    log.info("person erased", channel=erased.channel, person=mask(erased.person_key), files=files)
    return ErasedPerson(erased.channel, files, ended)


async def retain(core: Core) -> None:
    """``RETAIN_DAYS``: empty the texts of messages and replies older than that (rows, and so
    counts, stay), delete older files and the Chat API session tokens of conversations idle longer;
    one small batch at a time, between which delivery runs."""
    days = core.settings.retain_days
    if days is None:
        return
    data_dir = Path(core.settings.data_dir)
    cursor = records.RetentionCursor()
    swept = -RETENTION_IDLE
    while True:
        before = utcnow() - timedelta(days=days)
        passed = 0
        try:
            cursor, passed = await core.store.expire_texts(before, cursor)
            if time.monotonic() - swept >= RETENTION_IDLE:  # files (a directory walk) and the Chat
                swept = time.monotonic()  # API's session tokens of idle conversations, now and then
                await core.store.expire_tokens(before)
                for channel in core.channels.values():
                    await asyncio.to_thread(channel.remove_files, data_dir, before=before)
        except Exception:
            log.exception("retention pass failed")
        if passed:
            log.info("old texts emptied", rows=passed, older_than_days=days)
        await asyncio.sleep(RETENTION_BUSY if passed else RETENTION_IDLE)


async def keep_media(core: Core) -> None:
    """``MEDIA_KEEP_HOURS`` (or ``RETAIN_DAYS``, if shorter): delete the files people sent that are
    older than that, now and then."""
    settings = core.settings
    hours = min(settings.media_keep_hours, (settings.retain_days or float("inf")) * 24)
    media = media_store(settings.data_dir)
    while True:
        try:
            removed = await asyncio.to_thread(media.remove, before=utcnow() - timedelta(hours=hours))
        except Exception:
            log.exception("removing old files failed")
        else:
            if removed:
                log.info("old files removed", files=removed, older_than_hours=hours)
        await asyncio.sleep(RETENTION_IDLE)
