"""Operations: ``bridge telegram set-webhook`` / ``delete-webhook`` / ``poll``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable
from typing import TypeVar

import structlog
from telegram import BotCommand, Update
from telegram import error as tg

from bridge.channel import PollHost, SendError
from bridge.errors import BadRequest

from .channel import TelegramChannel
from .errors import retry_after

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Only what the bridge acts on: messages, and the bot's own membership (blocked / restarted).
ALLOWED_UPDATES = ["message", "my_chat_member"]


def webhook_url(channel: TelegramChannel, public_url: str) -> str:
    return f"{public_url.rstrip('/')}/webhooks/{channel.name}"


def bot_commands(channel: TelegramChannel) -> list[BotCommand]:
    """The menu Telegram shows; /help only when the channel has a help text."""
    options = channel.options
    commands = [
        BotCommand("start", options.start_description),
        BotCommand("reset", options.reset_description),
    ]
    if channel.texts.help:
        commands.append(BotCommand("help", options.help_description))
    return commands


async def set_webhook(channel: TelegramChannel, public_url: str) -> str:
    """Point Telegram at ``{public_url}/webhooks/{name}`` with the secret; register the commands."""
    url = webhook_url(channel, public_url)
    try:
        await channel.api.set_webhook(
            url,
            secret_token=channel.options.webhook_secret.get_secret_value(),
            allowed_updates=ALLOWED_UPDATES,
            max_connections=channel.options.max_connections,
        )
        await channel.api.set_my_commands(bot_commands(channel))
    except tg.TelegramError as exc:
        raise channel.scrub.send_error(exc) from None
    return url


async def delete_webhook(channel: TelegramChannel) -> None:
    """Stop webhook delivery (updates then wait for ``getUpdates``)."""
    try:
        await channel.api.delete_webhook()
    except tg.TelegramError as exc:
        raise channel.scrub.send_error(exc) from None


async def poll(channel: TelegramChannel, host: PollHost, stop: asyncio.Event) -> None:
    """Long-poll ``getUpdates`` and feed the same pipeline as the webhook, until ``stop`` is set.

    An update is confirmed (the next offset) only once it is stored, so a crash loses nothing;
    the store's de-duplication by ``update_id`` keeps a re-delivered one from being answered twice.
    """
    if getattr(channel, "context", None) is None:
        await channel.start(host.context(channel))
    await delete_webhook(channel)
    log.info("polling Telegram", channel=channel.name)
    offset: int | None = None
    delay = 1.0
    while not stop.is_set():
        try:
            updates = await _until_stopped(
                channel.api.get_updates(
                    offset=offset, timeout=channel.options.poll_timeout, allowed_updates=ALLOWED_UPDATES
                ),
                stop,
            )
            if updates is None:
                break
            for update in updates:
                await feed(channel, host, update)
                offset = update.update_id + 1
            delay = 1.0
        except tg.InvalidToken:
            raise SendError("Telegram rejected the bot token (check TELEGRAM_BOT_TOKEN)") from None
        except tg.RetryAfter as exc:
            await _sleep(retry_after(exc), stop)
        except Exception as exc:  # network, Conflict, a database hiccup: wait and poll again
            reason = channel.scrub(exc.message if isinstance(exc, tg.TelegramError) else repr(exc))
            log.warning("Telegram poll failed", channel=channel.name, reason=reason, retry_in=delay)
            await _sleep(delay, stop)
            delay = min(delay * 2, 30.0)


async def poll_or_exit(channel: TelegramChannel, host: PollHost, failed: list[str]) -> None:
    """``poll`` for ``bridge telegram poll``: if polling cannot start (Telegram unreachable, the
    token refused) or stops for good, say why in one line and stop the process, which then exits
    non-zero (``failed`` names the channel), so that a supervisor restarts it."""
    try:
        await poll(channel, host, asyncio.Event())
    except Exception as exc:
        reason = exc.reason if isinstance(exc, SendError) else channel.scrub(repr(exc))
        log.error("Telegram polling failed; stopping", channel=channel.name, reason=reason)
        failed.append(channel.name)
        signal.raise_signal(signal.SIGTERM)  # the server stops as on Ctrl-C, cleanly


async def feed(channel: TelegramChannel, host: PollHost, update: Update) -> None:
    """One update into the pipeline, exactly as the webhook handler does it (an unreadable one is
    skipped, as the webhook answers it 400, so polling moves past it)."""
    try:
        received = channel.parse_update(update)
    except BadRequest:
        return
    if received.messages or received.events:
        await host.receive(channel.name, received)


async def _until_stopped(call: Awaitable[T], stop: asyncio.Event) -> T | None:
    """The result of ``call``, or None once ``stop`` is set first (``call`` is then cancelled)."""
    task = asyncio.ensure_future(call)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return task.result() if not task.cancelled() else None


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
