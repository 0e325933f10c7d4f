"""The small interface every bot backend implements."""

from __future__ import annotations

import abc
from datetime import datetime

from bridge.model import Conversation, Reply


class BotError(Exception):
    """The bot could not answer.

    ``retryable``: the turn did not reach the bot (connection error, timeout, 429, 502/503/504),
    so sending it again is safe; ``retry_after`` is the server's hint in seconds. Otherwise the
    bot may already have stored the turn, and a blind retry would duplicate it.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class SessionGone(BotError):
    """The bot no longer knows this session (deleted or ended upstream): open a new one."""


class Bot(abc.ABC):
    """A chatbot the bridge relays to. One session per conversation."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open clients."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Close clients."""

    @abc.abstractmethod
    async def open_session(self, conversation: Conversation) -> str:
        """Create a session for this conversation (the person's details in its state); its id."""

    @abc.abstractmethod
    async def send(self, session_id: str, text: str) -> Reply:
        """Relay one message in the session and return the bot's answer."""

    async def recover(self, session_id: str, text: str, since: datetime) -> Reply | None:
        """The answer to ``text`` if an earlier attempt (sent at ``since``) already reached the bot,
        so that it is not sent twice; None if the bot never got it. Raise a retryable ``BotError``
        while the bot is still answering it."""
        return None

    @abc.abstractmethod
    async def end_session(self, session_id: str) -> None:
        """End the session (for /reset); an unknown session is not an error."""

    async def check(self) -> str:
        """Reach the backend and say what answered (for ``bridge check``); raise ``BotError``."""
        return "ok"
