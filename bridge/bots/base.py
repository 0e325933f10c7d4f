"""The small interface every bot backend implements."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.model import Attachment, Conversation, LocalFile, Reply

if TYPE_CHECKING:
    from aiohttp import web

StateChange = Callable[[dict[str, Any]], dict[str, Any]]


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


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Where a session lives on the bot's side (``url``: its API address) and whose it is."""

    url: str = ""
    team: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """A message for the person that the bot's side wrote by itself (not an answer the bridge
    relayed). ``id`` is stable: the same message read again has the same id."""

    id: str
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class History:
    """Messages for the person after a cursor (oldest first), and the cursor to read from next.
    ``closed``: the bot's side closed the session (the next message opens a new one)."""

    messages: list[HistoryMessage]
    cursor: str | None
    closed: bool = False


@dataclass(frozen=True, slots=True)
class HandedOff:
    """A human agent has the session: its history is followed (however old the conversation)."""

    session_id: str


@dataclass(frozen=True, slots=True)
class AgentReplyDue:
    """A human agent wrote in the session: its history is read now (the agent has the session)."""

    session_id: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The bot's side closed the session: a last read, then the next message opens a new one."""

    session_id: str


SessionEvent = HandedOff | AgentReplyDue | Closed


class Bot(abc.ABC):
    """A chatbot the bridge relays to. One session per conversation."""

    follows_history = False  # ``history`` can find messages the bot's side wrote by itself
    # ... only while a human agent has the conversation (open.cx): others are not read
    follows_only_handoff = False

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open clients."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Close clients."""

    @abc.abstractmethod
    async def open_session(self, conversation: Conversation) -> str:
        """Create a session for this conversation (the person's details in its state); its id."""

    accepts_files = False  # ``send`` takes the person's files (else they reach it as links)

    def slot(self, bound: asyncio.Semaphore) -> contextlib.AbstractAsyncContextManager[Any]:
        """What a message holds while the bot answers it: the worker's ``bound`` on the bot's
        requests in flight. A bot that waits between its requests (it polls for the answer) holds
        nothing: its connection pool bounds each request, and no slot is held while it waits."""
        return bound

    @abc.abstractmethod
    async def send(self, session_id: str, text: str, files: Sequence[LocalFile] = ()) -> Reply:
        """Relay one message in the session (with the person's ``files``, for a bot that
        ``accepts_files``) and return the bot's answer."""

    async def recover(self, session_id: str, text: str, since: datetime) -> Reply | None:
        """The answer to ``text`` if an earlier attempt (sent at ``since``) already reached the bot,
        so that it is not sent twice; None if the bot never got it. Raise a retryable ``BotError``
        while the bot is still answering it."""
        return None

    async def update_session(self, session_id: str, change: StateChange | None = None) -> SessionInfo:
        """Where the session lives; with ``change``, its state becomes ``change(state)`` (read,
        change, write: backends may only replace a state). Raise ``SessionGone`` if it is unknown."""
        return SessionInfo()

    async def history(self, session_id: str, cursor: str | None) -> History:
        """Messages for the person the bot's side wrote by itself after ``cursor`` (None: from the
        session's start): an OCS timeout trigger or reminder, a human agent's reply."""
        return History([], cursor)

    async def display_name(self) -> str | None:
        """The chatbot's name as its backend shows it (the widget's header); None if it has none."""
        return None

    async def ended(self, session_id: str, cursor: str | None) -> History | None:
        """Before a message is relayed into a session the bot's side may have ended without a word
        (OCS still accepts messages into it): what it wrote since ``cursor``, and whether it is
        closed. None: this bot needs no look (it refuses messages into closed sessions)."""
        return None

    @abc.abstractmethod
    async def end_session(self, session_id: str) -> None:
        """End the session (for /reset); an unknown session is not an error."""

    async def events(self, request: web.Request) -> list[SessionEvent] | None:
        """The session events of a webhook request from the bot's side (``POST /bot-events/{bot}``),
        once the request is verified (raise ``ApiError`` for a request refused). None: this bot
        sends no events (404)."""
        return None

    async def check(self) -> str:
        """Reach the backend and say what answered (for ``bridge check``); raise ``BotError``."""
        return "ok"
