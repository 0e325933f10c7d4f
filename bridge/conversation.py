"""One claimed conversation: its waiting reply parts go out first, in order, then its messages are
answered one at a time, in arrival order, each answer sent at once.

Everything the claim read stays in memory while the lease is held; the store is read again only
when new work arrived (the release, which checks ``inbox_seq``, tells). Waiting (a retry, a
backoff, a long flood limit) lets the conversation go with the time to come back."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Protocol

import structlog

from bridge.bots import Bot, BotError, SessionGone
from bridge.channel import Channel, SendError, Unreachable
from bridge.media.relay import Refused, prepare
from bridge.model import Kind, Part, Reply
from bridge.proactive.messages import stored_reply
from bridge.shape import Parts, shape
from bridge.store.follow import position
from bridge.voice import relay as heard_relay

if TYPE_CHECKING:
    from bridge.core import Core
    from bridge.settings import WorkerSettings
    from bridge.store import StoredMessage, StoredPart
    from bridge.store.queue import Claim, Queue

log = structlog.get_logger("bridge.worker")

JUST_OPENED = 10.0  # seconds: a session this run opened is not looked at before relaying into it


def now() -> datetime:
    return datetime.now(UTC)


class Sent(Enum):
    OUT = "out"  # went out
    RELEASED = "released"  # went out, and the conversation was let go (nothing new had arrived)
    DROPPED = "dropped"  # will never go out (dead letter, person unreachable): carry on
    LATER = "later"  # to be retried: the conversation was let go until then


class Runner(Protocol):
    """The worker that runs a conversation, as the run sees it."""

    core: Core
    config: WorkerSettings
    queue: Queue
    bot_slots: dict[str, asyncio.Semaphore]  # the bot's requests in flight are bounded
    stopping: bool


class ConversationRun:
    def __init__(self, worker: Runner, claim: Claim):
        self.worker = worker
        self.core = worker.core
        self.config = worker.config
        self.queue = worker.queue
        self.claim = claim
        self.id = claim.conversation.id
        self.channel: Channel | None = self.core.channels.get(claim.conversation.channel)
        self._opened: tuple[str, float] | None = None  # the session this run opened, and when

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            # shutting down: hand the conversation back at once so another worker can resume it
            await asyncio.shield(self.queue.release(self.id, run_at=now()))
            raise
        except Exception as exc:
            log.exception("conversation failed", conversation=self.id)
            await self._unexpected(exc)

    async def _run(self) -> None:
        while True:
            outcome = await self._deliver_waiting(release=not self.claim.messages)
            if outcome is not Sent.OUT:
                return
            while self.claim.messages:
                if self.worker.stopping:
                    await self.queue.release(self.id, run_at=now())
                    return
                message = self.claim.messages[0]
                if message.next_attempt_at > now():
                    await self.queue.release(self.id, run_at=message.next_attempt_at)
                    return
                with structlog.contextvars.bound_contextvars(
                    message_id=message.public_id, channel=message.channel
                ):
                    stored = await self._handle(message)
                    if stored is None:  # to be retried (let go until then), or the lease was lost
                        return
                    self.claim.messages.pop(0)
                    self.claim.parts.extend(stored)
                    outcome = await self._deliver_waiting(release=not self.claim.messages)
                if outcome is not Sent.OUT:
                    return
            # Nothing left that was read: let go, unless something new arrived meanwhile.
            if outcome is Sent.RELEASED or await self.queue.release(self.id, seq=self.claim.seq):
                return
            claim = await self.queue.reload(self.id)
            if claim is None:  # lease lost: another worker has it now
                return
            self.claim = claim

    # delivering ---------------------------------------------------------------------------------
    async def _deliver_waiting(self, *, release: bool) -> Sent:
        """Send the parts waiting, in order. With ``release``, the last one lets the conversation go
        if nothing new arrived (``RELEASED``). ``LATER`` if the conversation was let go to wait;
        ``OUT`` once none is left (all sent or dropped) and the conversation is still held."""
        parts = self.claim.parts
        while parts:
            part = parts[0]
            if part.next_attempt_at > now():
                await self.queue.release(self.id, run_at=part.next_attempt_at)
                return Sent.LATER
            with structlog.contextvars.bound_contextvars(message_id=part.message_ref):
                outcome = await self._deliver(part, self.claim.seq if release and len(parts) == 1 else None)
            if outcome is Sent.LATER:
                return outcome
            if parts and parts[0] is part:
                parts.pop(0)
            if outcome is Sent.RELEASED:
                return outcome
        return Sent.OUT

    async def _deliver(self, part: StoredPart, release_seq: int | None) -> Sent:
        """Send one part and note the outcome."""
        metrics = self.core.metrics
        name = self.claim.conversation.channel
        channel = self.channel
        if channel is None:
            await self.queue.part_dead(part, f"channel {name!r} is not configured")
            return Sent.DROPPED
        if self.claim.blocked:
            await self._unreachable("person blocked the bot")
            return Sent.DROPPED
        try:
            platform_id = await channel.send(
                self.claim.conversation, Part(part.id, part.seq, part.text, part.attachments)
            )
        except Unreachable as exc:
            log.warning("person unreachable, not sending again", reason=exc.reason)
            metrics.failed.labels(name, "deliver").inc()
            await self._unreachable(exc.reason)
            return Sent.DROPPED
        except SendError as exc:
            return await self._send_failed(part, exc.reason, exc.final, exc.retry_after, name)
        except Exception as exc:
            log.exception("send raised")
            return await self._send_failed(part, f"send failed ({type(exc).__name__})", False, None, name)
        released = await self.queue.part_sent(part, platform_id, release_seq=release_seq)
        metrics.delivered.labels(name).inc()
        log.info("part delivered", part=part.id, seq=part.seq)
        return Sent.RELEASED if released else Sent.OUT

    async def _unreachable(self, reason: str) -> None:
        """Nothing more reaches this person: their waiting parts are skipped (until they write again)."""
        await self.core.store.block_conversation(self.id, reason)
        self.claim.blocked = True
        self.claim.parts.clear()

    async def _send_failed(
        self, part: StoredPart, reason: str, final: bool, retry_after: float | None, channel: str
    ) -> Sent:
        if final or part.attempts + 1 >= self.config.max_attempts:
            log.warning("part undeliverable", part=part.id, reason=reason)
            self.core.metrics.failed.labels(channel, "deliver").inc()
            await self.queue.part_dead(part, reason)
            return Sent.DROPPED
        log.info("part send will be retried", part=part.id, reason=reason, attempt=part.attempts + 1)
        await self.queue.part_retry(part, now() + self._delay(part.attempts, retry_after), reason)
        return Sent.LATER

    def _delay(self, attempts: int, retry_after: float | None) -> timedelta:
        if retry_after is not None:
            return timedelta(seconds=retry_after)
        backoff = min(self.config.retry_max, self.config.retry_base * 2**attempts)
        return timedelta(seconds=backoff * random.uniform(0.5, 1.0))

    # handling a message -------------------------------------------------------------------------
    async def _handle(self, message: StoredMessage) -> list[StoredPart] | None:
        """Answer one message; the reply parts stored for it (None if it is not finished yet)."""
        channel = self.channel
        if channel is None:
            reason = f"channel {message.channel!r} is not configured"
            return await self._complete(message, [], dead_reason=reason)
        if self.claim.blocked:  # opted out (SMS STOP): their messages are kept, but nothing can reach them
            log.info("person opted out; message kept, not answered")
            return await self._complete(message, [])
        bot = self.core.bots[channel.bot]
        kind = Kind(message.kind)
        handed_off = None  # a session the bot says is with a human agent now
        try:
            if kind is Kind.UNSUPPORTED:
                parts = self._texts(channel.texts.unsupported)
            elif kind is Kind.DELIVER:  # a proactive message: delivered as is, no bot call
                parts = shape(channel, stored_reply(message))
            elif kind is Kind.HELP and channel.texts.help:
                parts = self._texts(channel.texts.help)
            elif kind is Kind.END:
                await self._finish(bot)
                parts = []
            elif kind in (Kind.RESET, Kind.START):
                await self._finish(bot)
                await self._open(bot)
                parts = self._texts(channel.texts.reset if kind is Kind.RESET else channel.texts.welcome)
            else:
                parts, handed_off = await heard_relay(self, bot, channel, message)  # voice notes heard first
        except BotError as exc:
            return await self._bot_failed(message, exc)
        except Refused as exc:  # a person's file the bot cannot be given: they are told
            return await self._complete(message, self._texts(exc.answer), dead_reason=exc.reason)
        stored = await self._complete(message, parts, handed_off=handed_off)
        if stored is None:
            log.warning("lease lost before the answer was stored; another worker will redo it")
        else:
            log.info("message answered", parts=len(parts))
        return stored

    async def _complete(
        self,
        message: StoredMessage,
        parts: Parts,
        dead_reason: str | None = None,
        handed_off: str | None = None,
    ) -> list[StoredPart] | None:
        """Store the outcome (and a handoff, in the same write, under the lease)."""
        following = self.claim.messages[1] if len(self.claim.messages) > 1 else None
        stored = await self.queue.complete(
            message, parts, dead_reason=dead_reason, next_message=following, handed_off=handed_off
        )
        self.claim.last_activity_at = now()
        if stored is not None and handed_off is not None:
            self.claim.handoff_session = handed_off
            log.info("conversation handed off to a human agent")
        return stored

    async def _relay(self, bot: Bot, channel: Channel, message: StoredMessage) -> tuple[Parts, str | None]:
        """The bot's answer as parts, and the session if the bot handed it to a human agent just now."""
        message, files = await prepare(self.core.settings, channel, bot, self.claim.conversation, message)
        async with bot.slot(self.worker.bot_slots[channel.bot]):  # its requests in flight are bounded
            session_id = self.claim.conversation.session_id
            idle = self.config.session_idle_timeout
            if (
                session_id
                and idle
                and (message.received_at - self.claim.last_activity_at).total_seconds() > idle
            ):
                log.info("session expired after idle time")
                await self._end(bot, session_id)
                session_id = None
            if session_id and self.claim.closed_session == session_id:
                log.info("bot session closed upstream; opening a new one")
                session_id = None
            goodbye: Parts = []
            if session_id and not self._just_opened(session_id):
                goodbye, session_id = await self._unless_ended(bot, channel, session_id)
            if session_id is None:
                session_id = await self._open(bot)
            metrics = self.core.metrics
            metrics.relayed.labels(channel.name).inc()
            started = time.monotonic()
            typing = asyncio.create_task(self._typing(channel))
            try:
                reply = await self._recovered(bot, session_id, message)
                if reply is None:
                    try:
                        reply = await bot.send(session_id, message.text, files)
                    except SessionGone:
                        log.info("bot session gone upstream; opening a new one")
                        reply = await bot.send(await self._open(bot), message.text, files)
            finally:
                typing.cancel()
        metrics.bot_latency.labels(channel.name).observe(time.monotonic() - started)
        metrics.replied.labels(channel.name).inc()
        parts = goodbye + shape(channel, reply)
        session_id = self.claim.conversation.session_id
        if not reply.handed_off or session_id is None or self.claim.handoff_session == session_id:
            return parts, None
        # With a human agent now: the person is told once. Their later messages still reach the
        # agent, with no answer expected; the agent's replies come through the history.
        return parts + self._texts(channel.texts.handoff), session_id

    async def _unless_ended(self, bot: Bot, channel: Channel, session_id: str) -> tuple[Parts, str | None]:
        """Ended means ended (OCS takes messages into an ended session all the same): a new session
        (None), and what the bot's side wrote since the follower's last read (a goodbye) first."""
        try:
            history = await bot.ended(session_id, await position(self.core.store, self.id, session_id))
        except SessionGone:
            return [], None
        if history is None or not history.closed:
            return [], session_id
        log.info("bot session ended upstream; opening a new one")
        said = [Reply(text=m.text, attachments=m.attachments) for m in history.messages]
        return [part for reply in said for part in shape(channel, reply)], None

    async def _recovered(self, bot: Bot, session_id: str, message: StoredMessage) -> Reply | None:
        """If an earlier attempt reached the bot (a crash, a timeout), its answer: never the same
        turn twice. ``relayed_at`` is as read at the claim, before this attempt noted its own."""
        if message.relayed_at is None:
            return None
        reply = await bot.recover(session_id, message.text, message.relayed_at)
        if reply is not None:
            log.info("answer recovered from the bot's history, not sent again")
        return reply

    def _just_opened(self, session_id: str) -> bool:
        """This run opened the session moments ago (a burst of messages): no need to look at it."""
        opened = self._opened or ("", 0.0)
        return opened[0] == session_id and time.monotonic() - opened[1] < JUST_OPENED

    async def _open(self, bot: Bot) -> str:
        session_id = await bot.open_session(self.claim.conversation)
        self._opened = (session_id, time.monotonic())
        await self._set_session(session_id)
        log.info("bot session opened")
        return session_id

    async def _set_session(self, session_id: str | None) -> None:
        await self.core.store.set_session(self.id, session_id)
        self.claim.conversation = dataclasses.replace(self.claim.conversation, session_id=session_id)

    async def _end(self, bot: Bot, session_id: str) -> None:
        try:
            await bot.end_session(session_id)
        except BotError as exc:
            if exc.retryable:
                raise
            log.warning("could not end the bot session", reason=exc.reason)

    async def _finish(self, bot: Bot) -> None:
        session_id = self.claim.conversation.session_id
        if session_id:
            await self._end(bot, session_id)
            await self._set_session(None)
            log.info("bot session ended")

    async def _typing(self, channel: Channel) -> None:
        """ "typing..." once the bot has been thinking for a moment, then again while it thinks."""
        if not channel.capabilities.typing:
            return
        await asyncio.sleep(self.config.typing_delay)
        while True:
            try:
                await channel.typing(self.claim.conversation)
            except Exception as exc:  # typing is a courtesy; never fail the message for it
                log.debug("typing failed", reason=str(exc))
            await asyncio.sleep(self.config.typing_interval)

    async def _bot_failed(self, message: StoredMessage, exc: BotError) -> list[StoredPart] | None:
        """Retry later if that is safe (the conversation is let go until then; None); otherwise a
        dead letter, and the apology (its parts)."""
        if exc.retryable and message.attempts + 1 < self.config.max_attempts:
            delay = self._delay(message.attempts, exc.retry_after)
            log.info("bot failed, will retry", reason=exc.reason, attempt=message.attempts + 1)
            await self.queue.retry_message(message, now() + delay, exc.reason)
            return None
        log.warning("bot failed, message kept as a dead letter", reason=exc.reason)
        assert self.channel is not None
        self.core.metrics.failed.labels(self.channel.name, "bot").inc()
        return await self._complete(message, self._texts(self.channel.texts.apology), dead_reason=exc.reason)

    async def _unexpected(self, exc: Exception) -> None:
        """A bug or a bad answer (not a BotError): count it as an attempt of the message at the
        head, so it ends as a dead letter with an apology instead of being retried forever."""
        reason = f"unexpected error ({type(exc).__name__})"
        try:
            if self.channel is not None and not self.claim.parts and self.claim.messages:
                message = self.claim.messages[0]
                if await self._bot_failed(message, BotError(reason, retryable=True)) is None:
                    return  # let go until the retry
        finally:
            await self.queue.release(self.id, run_at=now() + timedelta(seconds=1))

    # shaping replies ----------------------------------------------------------------------------
    def _texts(self, text: str) -> Parts:
        assert self.channel is not None
        return shape(self.channel, Reply(text=text))
