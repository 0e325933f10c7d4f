"""The interface every platform adapter implements, and its capabilities."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from bridge.model import Conversation, Event, Kind, Media, Part, Person, Received
from bridge.settings import BotSettings, ChannelSettings, Texts
from bridge.store.records import Accepted, StoredMessage, StoredPart


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform accepts, so the core can shape replies for it."""

    max_text: int = 4096
    length: Callable[[str], int] = len  # how the platform counts characters (Telegram: UTF-16)
    media_by_url: bool = False  # the platform fetches attachment URLs itself (send as real files)
    typing: bool = False  # the platform shows a "typing..." indicator (see Channel.typing)
    reach_new: bool = True  # the bridge can write first to a person it has never heard from
    # A person who writes again can be sent to again (on Telegram they unblocked the bot). False
    # where an opt-out holds until the person opts in (SMS STOP ... START).
    unblock_on_message: bool = True
    # Parts may wait for the person's next message (WhatsApp outside 24 hours): it releases them.
    holds_until_written: bool = False


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A webhook call as the platform made it: URL as it saw it (built from PUBLIC_URL).

    ``status``: it came to ``/webhooks/{name}/status`` (delivery reports). ``memo``: what an
    adapter decoded while verifying, kept for ``parse`` (a body is decoded once)."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    content_type: str = ""
    status: bool = False
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What a channel is given to do its work: never the core."""

    base_url: str  # the public base URL (PUBLIC_URL, else http://localhost:PORT)
    public_url: str | None  # as set: None while the platform cannot reach the bridge
    data_dir: Path
    bot: BotSettings | None  # the bot the channel routes to
    # Events noticed while sending (a group that moved): the core applies them.
    report: Callable[[Sequence[Event]], Awaitable[None]]


class SendError(Exception):
    """Sending a part failed. ``retry_after``: retry later (seconds, or None for backoff)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, final: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.final = final


class Unreachable(SendError):
    """The person cannot be sent to any more (blocked the bot, opted out, chat gone)."""

    def __init__(self, reason: str):
        super().__init__(reason, final=True)


class Resumable:
    """Remembers, per part, how many of its platform messages went out, so that a part retried after
    a failure resumes where it stopped instead of sending its first messages again."""

    def __init__(self) -> None:
        self._done: dict[int, int] = {}

    async def run(self, part_id: int, steps: Sequence[Callable[[], Awaitable[str | None]]]) -> str | None:
        """Run the steps not done yet, in order; the platform id the last one returned."""
        platform_id: str | None = None
        try:
            for index in range(self._done.get(part_id, 0), len(steps)):
                platform_id = await steps[index]()
                self._done[part_id] = index + 1
        except SendError as exc:
            if exc.final:
                self._done.pop(part_id, None)
            raise
        self._done.pop(part_id, None)
        return platform_id


class Channel(abc.ABC):
    """A named connection to one platform account (a Telegram bot, a Twilio number, a widget)."""

    kind: str = ""  # "telegram", "twilio", "web" ...
    capabilities: Capabilities = Capabilities()

    def __init__(self, name: str, settings: ChannelSettings):
        self.name = name
        self.settings = settings
        self.bot = settings.bot
        self.texts = Texts.from_settings(settings.texts)

    # lifecycle ----------------------------------------------------------------------------------
    async def start(self, context: ChannelContext) -> None:
        """Open clients (called once, in the app's cleanup context)."""
        self.context = context

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Close clients."""

    async def check(self) -> str:
        """Reach the platform with the configured credentials (``check``); say who answered.

        Raise ``SendError`` with a plain reason when it cannot be reached or the credentials are wrong.
        """
        return "ok"

    # inbound ------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def verify(self, request: WebhookRequest) -> None:
        """Check the webhook's signature or secret; raise an ``ApiError`` (401/403/415) if wrong."""

    @abc.abstractmethod
    def parse(self, request: WebhookRequest) -> Received:
        """Turn a verified request into messages and platform events (pure: no I/O).

        Raise ``BadRequest`` if it is malformed, and nothing else: any other exception is a bug of
        ours, answered 500 so that the platform retries. Payloads that carry nothing to act on
        (edits, read receipts) give an empty ``Received``."""

    def ack(self) -> web.Response:
        """The answer the platform expects once the request is stored."""
        return web.json_response({"ok": True})

    # outbound -----------------------------------------------------------------------------------
    def person(self, identifier: str) -> Person:
        """Who ``identifier`` names here, for a person the bridge writes to first (trigger_bot)."""
        return Person(key=identifier, address=identifier, platform=self.kind)

    @abc.abstractmethod
    async def send(self, conversation: Conversation, part: Part) -> str | None:
        """Deliver one part; return the platform's message id. Raise ``SendError``/``Unreachable``."""

    async def typing(self, conversation: Conversation) -> None:  # noqa: B027 - optional hook
        """Show "typing..." once (the worker repeats it while the bot thinks)."""

    def speaks(self, conversation: Conversation) -> bool:
        """A voice note (an ``audio/ogg`` attachment, OGG/Opus) can go to this conversation now."""
        return False

    async def fetch(self, media: Media, limit: int) -> AsyncIterator[bytes]:
        """The bytes of a file the person sent (``Media.ref``), at most ``limit`` of them, from
        the platform (with its credentials, which never leave the adapter). Raise ``SendError``
        (``final`` when it can never be fetched: gone, too large)."""
        raise SendError(f"channel {self.name!r} cannot fetch files", final=True)
        yield b""  # pragma: no cover - an async generator

    # people's data ------------------------------------------------------------------------------
    def remove_files(
        self, data_dir: Path, *, person_key: str | None = None, before: datetime | None = None
    ) -> int:
        """Delete the files this channel keeps for people: one person's (an erase), or those older
        than ``before`` (retention); how many. Works without ``start`` (the CLI calls it)."""
        return 0


# What adapters that take people's messages outside the webhook are given: never the core (which
# satisfies these, so the app hands it over typed as one of them).
class Receiver(Protocol):
    async def receive(self, name: str, received: Received) -> list[Accepted]:
        """The core's one accept path: store what one request carries and wake the workers."""
        ...


class PollHost(Receiver, Protocol):
    """What a channel that fetches its updates itself (Telegram's long polling) is given."""

    def context(self, channel: Channel) -> ChannelContext: ...


class ChatReads(Protocol):
    """The store's reads a channel serving its own chat API (the widget) makes."""

    async def conversation(self, channel: str, key: str) -> Conversation | None: ...
    async def conversations_with(self, channel: str, field: str, value: str) -> list[Conversation]: ...
    async def message(self, public_id: str) -> StoredMessage | None: ...
    async def parts_of(self, message_id: int) -> list[StoredPart]: ...
    async def transcript(
        self, conversation_id: int, since: datetime | None, limit: int, asked: datetime
    ) -> list[StoredMessage | StoredPart]: ...
    async def ended(self, conversation_id: int) -> str | None: ...


class NamedBot(Protocol):
    async def display_name(self) -> str | None: ...


class ChatSettings(Protocol):
    @property
    def max_body_bytes(self) -> int: ...
    @property
    def serves_demo(self) -> bool: ...


class ChatHost(Receiver, Protocol):
    """What the routes of a channel serving its own chat API (the widget's) are given."""

    @property
    def store(self) -> ChatReads: ...
    @property
    def channels(self) -> Mapping[str, Channel]: ...
    @property
    def bots(self) -> Mapping[str, NamedBot]: ...
    @property
    def settings(self) -> ChatSettings: ...


def command_kind(text: str) -> Kind:
    """The core's own commands, for channels without native commands: ``/reset``."""
    word = text.strip().split(maxsplit=1)[0].lower() if text.strip() else ""
    return Kind.RESET if word == "/reset" else Kind.TEXT
