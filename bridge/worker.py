"""Delivery workers: claim conversations, relay their messages to the bot in order, send the replies.

A dispatcher leases up to ``concurrency`` conversations at a time and runs one task per
conversation; a heartbeat keeps the leases alive. Within a conversation, reply parts waiting to
go out are sent first (in order), then the oldest pending message is handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from bridge.bots import Bot, BotError, SessionGone
from bridge.channel import Channel, SendError, Unreachable
from bridge.model import Attachment, Conversation, Kind, Part, Reply
from bridge.proactive.messages import stored_reply
from bridge.split import split_text
from bridge.store.queue import Queue, Work
from bridge.store.records import clean_text

if TYPE_CHECKING:
    from bridge.core import Core
    from bridge.store import StoredMessage, StoredPart

log = structlog.get_logger("bridge.worker")

Parts = list[tuple[str, tuple[Attachment, ...]]]


def now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(self, core: Core, owner: str):
        self.core = core
        self.config = core.settings.worker
        self.queue = Queue(core.store, owner, self.config.lease_seconds)
        self.wakeup = asyncio.Event()
        self.active: dict[int, asyncio.Task[None]] = {}
        self.stopping = False
        self.running = False
        self._heartbeat_task: asyncio.Task[None] | None = None

    # dispatcher ---------------------------------------------------------------------------------
    async def run(self) -> None:
        self.running = True
        self._heartbeat_task = asyncio.create_task(self._heartbeat())
        try:
            while not self.stopping:
                self.wakeup.clear()
                free = self.config.concurrency - len(self.active)
                if free > 0:
                    try:
                        for conversation_id in await self.queue.claim(free):
                            self._spawn(conversation_id)
                    except Exception:
                        log.exception("claim failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), self.config.poll_interval)
        finally:
            self.running = False

    def _spawn(self, conversation_id: int) -> None:
        task = asyncio.create_task(
            self._conversation(conversation_id), name=f"conversation-{conversation_id}"
        )
        self.active[conversation_id] = task

        def done(_: asyncio.Task[None]) -> None:
            self.active.pop(conversation_id, None)
            self.wakeup.set()

        task.add_done_callback(done)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease_seconds / 4)
            try:
                await self.queue.renew(list(self.active))
            except Exception:
                log.exception("lease renewal failed")

    async def stop(self, grace: float) -> None:
        """Stop claiming; let in-flight conversations finish for ``grace`` seconds, then release them."""
        self.stopping = True
        self.wakeup.set()
        tasks = list(self.active.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._heartbeat_task is not None:  # leases stay alive while in-flight work finishes
            self._heartbeat_task.cancel()

    # one conversation ---------------------------------------------------------------------------
    async def _conversation(self, conversation_id: int) -> None:
        try:
            while not self.stopping:
                work = await self.queue.work(conversation_id)
                if work is None:  # lease lost: another worker has it now
                    return
                if not await self._step(work):
                    return
        except asyncio.CancelledError:
            # shutting down: hand the conversation back at once so another worker can resume it
            await asyncio.shield(self.queue.release(conversation_id, run_at=now()))
            raise
        except Exception as exc:
            log.exception("conversation failed", conversation=conversation_id)
            await self._unexpected(conversation_id, exc)
        else:
            if self.stopping:
                await self.queue.release(conversation_id, run_at=now())

    async def _unexpected(self, conversation_id: int, exc: Exception) -> None:
        """A bug or a bad answer (not a BotError): count it as an attempt of the message at the
        head, so it ends as a dead letter with an apology instead of being retried forever."""
        reason = f"unexpected error ({type(exc).__name__})"
        try:
            work = await self.queue.work(conversation_id)
            channel = self.core.channels.get(work.conversation.channel) if work else None
            if work is not None and work.part is None and work.message is not None and channel is not None:
                stored = await self._bot_failed(channel, work.message, BotError(reason, retryable=True))
                if stored:  # the apology: the next round sends it
                    log.info("apology queued")
        finally:
            await self.queue.release(conversation_id, run_at=now() + timedelta(seconds=1))

    async def _step(self, work: Work) -> bool:
        """Do the next thing in this conversation; False once it has nothing due (released)."""
        conversation_id = work.conversation.id
        channel = self.core.channels.get(work.conversation.channel)
        part, message = work.part, work.message
        if part is not None:
            if part.next_attempt_at > now():
                await self.queue.release(conversation_id, run_at=part.next_attempt_at)
                return False
            with structlog.contextvars.bound_contextvars(message_id=part.message_ref):
                await self._deliver(channel, work, part)
            return True
        if message is None:
            return not await self.queue.release(conversation_id, seq=work.seq)
        if message.next_attempt_at > now():
            await self.queue.release(conversation_id, run_at=message.next_attempt_at)
            return False
        with structlog.contextvars.bound_contextvars(message_id=message.public_id, channel=message.channel):
            parts = await self._handle(channel, work, message)
            if parts is None or work.more_messages:
                return True
            # The common case: send the answer at once, then let go unless something new arrived.
            for stored in parts:
                if not await self._deliver(channel, work, stored):
                    return True
        return not await self.queue.release(conversation_id, seq=work.seq)

    # delivering ---------------------------------------------------------------------------------
    async def _deliver(self, channel: Channel | None, work: Work, part: StoredPart) -> bool:
        """Send one part; True if it went out."""
        metrics = self.core.metrics
        name = work.conversation.channel
        if channel is None:
            await self.queue.part_dead(part, f"channel {name!r} is not configured")
            return False
        if work.blocked:
            await self.core.store.block_conversation(work.conversation.id, "person blocked the bot")
            return False
        try:
            platform_id = await channel.send(
                work.conversation, Part(part.id, part.seq, part.text, part.attachments)
            )
        except Unreachable as exc:
            log.warning("person unreachable, not sending again", reason=exc.reason)
            metrics.failed.labels(name, "deliver").inc()
            await self.core.store.block_conversation(work.conversation.id, exc.reason)
            return False
        except SendError as exc:
            await self._send_failed(part, exc.reason, exc.final, exc.retry_after, name)
            return False
        except Exception as exc:
            log.exception("send raised")
            await self._send_failed(part, f"send failed ({type(exc).__name__})", False, None, name)
            return False
        await self.queue.part_sent(part, platform_id)
        metrics.delivered.labels(name).inc()
        log.info("part delivered", part=part.id, seq=part.seq)
        return True

    async def _send_failed(
        self, part: StoredPart, reason: str, final: bool, retry_after: float | None, channel: str
    ) -> None:
        if final or part.attempts + 1 >= self.config.max_attempts:
            log.warning("part undeliverable", part=part.id, reason=reason)
            self.core.metrics.failed.labels(channel, "deliver").inc()
            await self.queue.part_dead(part, reason)
        else:
            log.info("part send will be retried", part=part.id, reason=reason, attempt=part.attempts + 1)
            await self.queue.part_retry(part, now() + self._delay(part.attempts, retry_after), reason)

    def _delay(self, attempts: int, retry_after: float | None) -> timedelta:
        if retry_after is not None:
            return timedelta(seconds=retry_after)
        backoff = min(self.config.retry_max, self.config.retry_base * 2**attempts)
        return timedelta(seconds=backoff * random.uniform(0.5, 1.0))

    # handling a message -------------------------------------------------------------------------
    async def _handle(
        self, channel: Channel | None, work: Work, message: StoredMessage
    ) -> list[StoredPart] | None:
        """Answer one message; the reply parts stored for it (None if it is not finished yet)."""
        if channel is None:
            reason = f"channel {message.channel!r} is not configured"
            return await self.queue.complete(message, [], dead_reason=reason)
        if work.blocked:  # opted out (SMS STOP): their messages are kept, but nothing can reach them
            log.info("person opted out; message kept, not answered")
            return await self.queue.complete(message, [])
        bot = self.core.bots[channel.bot]
        kind = Kind(message.kind)
        try:
            if kind is Kind.UNSUPPORTED:
                parts = self._texts(channel, channel.texts.unsupported)
            elif kind is Kind.DELIVER:  # proactive (issue 10): delivered as is, no bot call
                parts = self._shape(channel, stored_reply(message))
            elif kind is Kind.HELP and channel.texts.help:
                parts = self._texts(channel, channel.texts.help)
            elif kind is Kind.END:
                await self._finish(bot, work.conversation)
                parts = []
            elif kind in (Kind.RESET, Kind.START):
                await self._reset(bot, work.conversation)
                text = channel.texts.reset if kind is Kind.RESET else channel.texts.welcome
                parts = self._texts(channel, text)
            else:
                parts = await self._relay(bot, channel, work, message)
        except BotError as exc:
            return await self._bot_failed(channel, message, exc)
        stored = await self.queue.complete(message, parts)
        if stored is None:
            log.warning("lease lost before the answer was stored; another worker will redo it")
        else:
            log.info("message answered", parts=len(parts))
        return stored

    async def _relay(self, bot: Bot, channel: Channel, work: Work, message: StoredMessage) -> Parts:
        conversation = work.conversation
        session_id = conversation.session_id
        idle = self.config.session_idle_timeout
        if session_id and idle and (message.received_at - work.last_activity_at).total_seconds() > idle:
            log.info("session expired after idle time")
            await self._end(bot, session_id)
            session_id = None
        if session_id is None:
            session_id = await self._open(bot, conversation)
        metrics = self.core.metrics
        metrics.relayed.labels(channel.name).inc()
        started = time.monotonic()
        typing = asyncio.create_task(self._typing(channel, conversation))
        try:
            reply = await self._recovered(bot, session_id, message)
            if reply is None:
                await self.queue.mark_relayed(message)
                try:
                    reply = await bot.send(session_id, message.text)
                except SessionGone:
                    log.info("bot session gone upstream; opening a new one")
                    reply = await bot.send(await self._open(bot, conversation), message.text)
        finally:
            typing.cancel()
        metrics.bot_latency.labels(channel.name).observe(time.monotonic() - started)
        metrics.replied.labels(channel.name).inc()
        return self._shape(channel, reply)

    async def _recovered(self, bot: Bot, session_id: str, message: StoredMessage) -> Reply | None:
        """If an earlier attempt reached the bot (a crash, a timeout), its answer: never the same
        turn twice."""
        if message.relayed_at is None:
            return None
        reply = await bot.recover(session_id, message.text, message.relayed_at)
        if reply is not None:
            log.info("answer recovered from the bot's history, not sent again")
        return reply

    async def _open(self, bot: Bot, conversation: Conversation) -> str:
        session_id = await bot.open_session(conversation)
        await self.core.store.set_session(conversation.id, session_id)
        log.info("bot session opened")
        return session_id

    async def _end(self, bot: Bot, session_id: str) -> None:
        try:
            await bot.end_session(session_id)
        except BotError as exc:
            if exc.retryable:
                raise
            log.warning("could not end the bot session", reason=exc.reason)

    async def _reset(self, bot: Bot, conversation: Conversation) -> None:
        await self._finish(bot, conversation)
        await self._open(bot, conversation)

    async def _finish(self, bot: Bot, conversation: Conversation) -> None:
        if conversation.session_id:
            await self._end(bot, conversation.session_id)
            await self.core.store.set_session(conversation.id, None)
            log.info("bot session ended")

    async def _typing(self, channel: Channel, conversation: Conversation) -> None:
        if not channel.capabilities.typing:
            return
        while True:
            try:
                await channel.typing(conversation)
            except Exception as exc:  # typing is a courtesy; never fail the message for it
                log.debug("typing failed", reason=str(exc))
            await asyncio.sleep(self.config.typing_interval)

    async def _bot_failed(
        self, channel: Channel, message: StoredMessage, exc: BotError
    ) -> list[StoredPart] | None:
        """Retry later if that is safe; otherwise a dead letter, and the apology (its parts)."""
        if exc.retryable and message.attempts + 1 < self.config.max_attempts:
            delay = self._delay(message.attempts, exc.retry_after)
            log.info("bot failed, will retry", reason=exc.reason, attempt=message.attempts + 1)
            await self.queue.retry_message(message, now() + delay, exc.reason)
            return None
        log.warning("bot failed, message kept as a dead letter", reason=exc.reason)
        self.core.metrics.failed.labels(channel.name, "bot").inc()
        apology = self._texts(channel, channel.texts.apology)
        return await self.queue.complete(message, apology, dead_reason=exc.reason)

    # shaping replies ----------------------------------------------------------------------------
    def _texts(self, channel: Channel, text: str) -> Parts:
        return self._shape(channel, Reply(text=text))

    def _shape(self, channel: Channel, reply: Reply) -> Parts:
        caps = channel.capabilities
        text, attachments = clean_text(reply.text), reply.attachments
        if attachments and not caps.media_by_url:
            links = "\n".join(f"[{a.name}]({a.url})" for a in attachments)
            text, attachments = f"{text}\n\n{links}".strip(), ()
        texts = split_text(text, caps.max_text, caps.length)
        if not texts and attachments:
            texts = [""]
        parts: Parts = [(t, ()) for t in texts]
        if parts:
            parts[-1] = (parts[-1][0], attachments)
        return parts
