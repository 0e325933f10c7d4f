"""The follower: delivers messages the bot's side wrote by itself into a person's session.

OCS cannot push to API-channel sessions: its timeout triggers, scheduled and triggered messages
wait in the session's history. Every ``PROACTIVE_POLL_SECONDS`` the follower reads the history
of the conversations active within ``PROACTIVE_WINDOW_HOURS`` (``bridge.store.follow.followed``)
that are not waiting for the bot anyway, through ``Bot.history``, and stores each new message as
a ``Kind.DELIVER`` row: the worker delivers it in order, and its id (session and history message)
makes it once, whichever process finds it. Reads are spread over the interval, one at a time,
and back off when the bot says 429 or when its request budget is kept for messages (OCS's team
budget: ``bridge.bots.team_budget``). A history that says the session ended (OCS) is handled as
one closed upstream: what it holds is delivered, and the next message opens a new session.

Conversations handed off to a human agent (open.cx) are read the same way, however long ago they
were active, until their session is closed; those bots' other conversations are not read. A
webhook event (``bridge.bot_events``) brings a read forward and wakes the follower
(``Core.read_history_soon``); it never replaces the reads. With ``PROACTIVE_POLL_SECONDS=0`` only
handed-off conversations are read, every ``HANDOFF_POLL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from bridge.bots import BotError, SessionGone
from bridge.proactive.messages import deliver, enqueue
from bridge.store.follow import to_read
from bridge.store.tables import utcnow

if TYPE_CHECKING:
    from bridge.core import Core

log = structlog.get_logger("bridge.follow")

ROUND_LIMIT = 1000  # conversations read in one interval by one process (the others wait a round)
HANDOFF_POLL_SECONDS = 60.0  # handed-off conversations, when PROACTIVE_POLL_SECONDS is 0


class Follower:
    def __init__(self, core: Core):
        self.core = core
        poll = core.settings.proactive_poll_seconds
        self.interval = poll or HANDOFF_POLL_SECONDS
        self.window = timedelta(hours=core.settings.proactive_window_hours)
        self.backoff = 0.0
        bots = core.bots
        following = {name: bots[c.bot] for name, c in core.channels.items() if bots[c.bot].follows_history}
        # channels whose bot writes by itself in any active session (OCS); the rest only handed off
        self.active = [name for name, bot in following.items() if not bot.follows_only_handoff and poll > 0]
        self.channels = self.active + [name for name, bot in following.items() if bot.follows_only_handoff]

    async def run(self) -> None:
        if not self.channels:
            log.info("follower: off, no conversation's history to read")
            return
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                since = utcnow() - self.window
                due = await to_read(self.core.store, self.channels, self.active, since, ROUND_LIMIT)
            except Exception:
                log.exception("follower: cannot list conversations")
                due = []
            spacing = self.interval / len(due) if due else 0.0
            for conversation_id in due:
                pause = await self.read(conversation_id)
                await self._pause(max(spacing, pause))
            self.core.history_rounds += 1
            await self._pause(max(0.0, started + self.interval - loop.time()))

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, reading meanwhile, at once, the conversations events name."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        core = self.core
        while True:
            core.history_event.clear()
            while core.history_due:
                pause = await self.read(core.history_due.pop())
                await asyncio.sleep(pause)
            left = end - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(core.history_event.wait(), timeout=left)

    async def read(self, conversation_id: int) -> float:
        """Read one conversation's history and store what is new; seconds to pause after it."""
        store = self.core.store
        try:
            now = utcnow()
            until = now + timedelta(seconds=self.interval)
            claim = await store.claim_read(conversation_id, self.active, now - self.window, until)
            if claim is None:
                return 0.0
            conversation = claim.conversation
            session_id = conversation.session_id
            channel = self.core.channels.get(conversation.channel)
            if channel is None or session_id is None:
                return 0.0
            history = await self.core.bots[channel.bot].history(session_id, claim.position)
            for found in history.messages:
                platform_id = history_id(session_id, found.id)
                message = deliver(
                    channel.name, conversation.person, platform_id, found.text, found.attachments
                )
                accepted = await enqueue(self.core, message)
                if not accepted.duplicate:
                    log.info("message from the bot's side queued", message_id=accepted.public_id)
            if history.cursor != claim.position:
                await store.advance(conversation_id, session_id, history.cursor)
            if history.closed or claim.closed:
                log.info("bot session closed upstream; the next message opens a new one")
                await store.forget_session(conversation_id, session_id)
        except SessionGone:
            return 0.0
        except BotError as exc:
            if not exc.retryable:
                log.warning("follower: cannot read a session's history", reason=exc.reason)
                return 0.0
            self.backoff = exc.retry_after or min(max(2 * self.backoff, 1.0), max(self.interval, 1.0))
            log.info("follower: bot busy, backing off", seconds=self.backoff, reason=exc.reason)
            return self.backoff
        except Exception:
            log.exception("follower: reading a history failed")
            return 0.0
        self.backoff = 0.0
        return 0.0


def history_id(session_id: str, message_id: str) -> str:
    """The inbound row's platform id for a history message (at most 255 characters)."""
    platform_id = f"history:{session_id}:{message_id}"
    if len(platform_id) <= 255:
        return platform_id
    return "history:" + hashlib.sha256(platform_id.encode()).hexdigest()
