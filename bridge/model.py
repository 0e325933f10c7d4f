"""Typed values that travel through the core: inbound messages, platform events, replies."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Kind(enum.StrEnum):
    """What an inbound message asks of the bridge."""

    TEXT = "text"  # relay to the bot
    RESET = "reset"  # end the bot session, start a new one, tell the person
    START = "start"  # like reset, then the channel's welcome text (Telegram /start)
    HELP = "help"  # answer with the channel's help text
    END = "end"  # end the bot session quietly (the widget's "new chat" left this conversation)
    UNSUPPORTED = "unsupported"  # photo, sticker, voice...: answer what the bot can read
    PROMPT = "prompt"  # proactive: ask the bot with this text in the person's session, deliver the answer
    DELIVER = "deliver"  # proactive: deliver this text (and ``context["attachments"]``) as is


@dataclass(frozen=True, slots=True)
class Person:
    """Who wrote, as the platform names them.

    ``key`` identifies the conversation inside a channel (a Telegram chat id, ``chat:user``
    in a per-person group, a phone number). ``address`` is where replies go (chat id, phone
    number); it is usually the same as ``key``.
    """

    key: str
    address: str
    name: str = ""
    platform: str = ""

    def __post_init__(self) -> None:
        _strings(self, "key", "address", "name", "platform")


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a person sent, parsed from a platform payload (pure data, no I/O)."""

    channel: str
    platform_id: str  # unique per channel: a platform retry carries the same id
    person: Person
    kind: Kind = Kind.TEXT
    text: str = ""
    what: str = ""  # for UNSUPPORTED: "photo", "sticker", ...
    context: dict[str, Any] = field(default_factory=dict)  # platform details kept with the row
    state: dict[str, Any] = field(default_factory=dict)  # merged into the conversation's state
    media: tuple[Media, ...] = ()  # files the person sent (``text`` is then their caption)

    def __post_init__(self) -> None:
        _strings(self, "channel", "platform_id", "text", "what")


@dataclass(frozen=True, slots=True)
class Media:
    """A file a person sent, as the platform names it: fetched later, in the worker, through the
    channel (``Channel.fetch``), never in the webhook. ``ref`` is the platform's handle (a
    Telegram ``file_id``, a Twilio ``MediaUrlN``, a widget upload's id); ``content_type``,
    ``size`` and ``seconds`` are what the platform claims (the bytes are sniffed once fetched)."""

    kind: str  # photo | document | video | audio | voice | video_note | image | file
    ref: str
    name: str = ""
    content_type: str = ""
    size: int | None = None
    seconds: float | None = None  # a voice note's or a video's length, when the platform says

    def __post_init__(self) -> None:
        _strings(self, "kind", "ref", "name", "content_type")


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A person's file once fetched: on the bridge's disk, its type sniffed from its bytes."""

    path: Path
    name: str
    content_type: str
    size: int


def _strings(record: object, *names: str) -> None:
    """A parser that let a non-string through (a JSON list where text was expected) fails here,
    where its own error handling sees it, not later in the store."""
    for name in names:
        if not isinstance(getattr(record, name), str):
            raise TypeError(f"{type(record).__name__}.{name} must be a string")


# Platform events: what a verified request says besides messages. The core applies them in the
# request's one accept transaction; each is safe to apply twice (a platform's retry).
@dataclass(frozen=True, slots=True)
class Blocked:
    """The person blocked or unblocked the bot, or opted out or back in (SMS STOP / START).
    ``remember``: keep a person the bridge has not heard from yet (STOP as their first message)."""

    person: Person
    blocked: bool
    remember: bool = False


@dataclass(frozen=True, slots=True)
class ChatMoved:
    """A chat's address changed (a Telegram group became a supergroup): the conversations replying
    to ``old`` follow it; a key ``old`` or ``old:…`` becomes ``new`` or ``new:…``."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Opened:
    """A conversation opened before its first message (a widget session), with its state."""

    person: Person
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """The platform's report on a part the bridge sent (Twilio status callbacks)."""

    platform_id: str  # the id ``Channel.send`` returned for the part
    status: str  # queued | sent | delivered | read | undelivered | failed
    reason: str = ""  # why it failed (an error code and its meaning), never a secret
    unreachable: bool = False  # the person cannot be sent to any more (opted out, blocked)
    # Send the part again, after these changes to the conversation's state (WhatsApp 63016: the
    # channel then knows the 24-hour window is closed and sends its template first).
    again: dict[str, Any] | None = None


Event = Blocked | ChatMoved | Opened | DeliveryReport


@dataclass(frozen=True, slots=True)
class Received:
    """Everything one verified request carries: messages to answer and platform events."""

    messages: tuple[InboundMessage, ...] = ()
    events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file of a reply: a name and an absolute URL anyone can fetch."""

    name: str
    url: str
    content_type: str = ""
    size: int | None = None

    @property
    def is_image(self) -> bool:
        if self.content_type:
            return self.content_type.startswith("image/")
        return self.name.lower().rsplit(".", 1)[-1] in {"png", "jpg", "jpeg", "gif", "webp"}


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot answered. ``handed_off``: the session is with a human agent now (open.cx), who
    answers later; ``text`` is then whatever came at once (usually nothing)."""

    text: str
    attachments: tuple[Attachment, ...] = ()
    handed_off: bool = False


@dataclass(frozen=True, slots=True)
class Part:
    """One outbound message of a reply, after splitting, as the worker hands it to a channel."""

    id: int
    seq: int
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Conversation:
    """A (channel, person) conversation as stored."""

    id: int
    channel: str
    person: Person
    session_id: str | None
    state: dict[str, Any]
