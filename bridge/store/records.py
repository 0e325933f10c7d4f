"""What the store hands out (frozen records, never ORM rows), and the cleaning of what goes in."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.errors import Unstorable
from bridge.model import (
    Attachment,
    Blocked,
    ChatMoved,
    Conversation,
    DeliveryReport,
    Event,
    InboundMessage,
    Media,
    Opened,
    Person,
    Received,
)
from bridge.store.tables import ConversationRow, MessageRow, PartRow


@dataclass(frozen=True, slots=True)
class Backlog:
    """What the queue holds: work waiting, dead letters, and since when the oldest work waits."""

    depth: int
    dead: int
    oldest_pending: datetime | None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The outcome of storing one inbound message."""

    message_id: int
    public_id: str
    conversation_id: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    public_id: str
    conversation_id: int
    channel: str
    kind: str
    text: str
    what: str
    status: str  # pending | done | dead
    attempts: int
    next_attempt_at: datetime
    error: str | None
    received_at: datetime
    relayed_at: datetime | None = None  # an earlier attempt handed it to the bot at this time
    context: dict[str, Any] = dataclasses.field(default_factory=dict)  # platform details, kept with the row

    @property
    def media(self) -> tuple[Media, ...]:
        """The files the person sent with it (kept in its context at accept)."""
        return tuple(Media(**item) for item in self.context.get(MEDIA_KEY) or ())


@dataclass(frozen=True, slots=True)
class StoredPart:
    id: int
    conversation_id: int
    message_id: int | None
    seq: int
    text: str
    attachments: tuple[Attachment, ...]
    status: str  # pending | sent | dead | skipped
    attempts: int
    next_attempt_at: datetime
    error: str | None
    created_at: datetime
    message_ref: str | None = None  # the public id of the message it answers (for logs)
    delivery_status: str | None = None  # as the platform (or the widget) last reported


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be answered (``in-N``) or a part that could not be delivered (``out-N``)."""

    ref: str
    channel: str
    person_key: str
    at: datetime
    reason: str
    expired: bool = False  # retention emptied its text: it cannot be retried


@dataclass(frozen=True, slots=True)
class Schedule:
    """Ask the bot with ``prompt`` at ``due_at`` in the person's session (``fired_at`` once stored)."""

    id: str
    name: str
    prompt: str
    due_at: datetime
    fired_at: datetime | None = None


MEDIA_KEY = "files"  # the message context's list of the person's files (``Media``)
ID_LIMIT = 255  # person keys, addresses and platform message ids (String(255) columns)


def clean_text(text: str) -> str:
    """Text any database stores and any platform accepts: no NUL characters, no lone surrogates.

    The one cleaning of text: the store applies it to everything it keeps (messages, reply parts,
    people, state) and to the values it looks up."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def clean_json(value: Any) -> Any:
    """A JSON value (conversation state, message context) with every string cleaned, keys too."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def clean_person(person: Person) -> Person:
    key, address = clean_text(person.key), clean_text(person.address)
    if not key or len(key) > ID_LIMIT or len(address) > ID_LIMIT:
        raise Unstorable("person id missing or too long")
    return dataclasses.replace(
        person,
        key=key,
        address=address,
        name=clean_text(person.name)[:ID_LIMIT],
        platform=person.platform[:32],
    )


def clean_message(message: InboundMessage) -> InboundMessage:
    platform_id = clean_text(message.platform_id)
    if not platform_id or len(platform_id) > ID_LIMIT:
        raise Unstorable("message id missing or too long")
    return dataclasses.replace(
        message,
        platform_id=platform_id,
        person=clean_person(message.person),
        text=clean_text(message.text),
        what=clean_text(message.what)[:64],
        context=clean_json(message.context | _media_context(message.media)),
        state=clean_json(message.state),
    )


def _media_context(media: tuple[Media, ...]) -> dict[str, Any]:
    return {MEDIA_KEY: [dataclasses.asdict(m) for m in media]} if media else {}


def clean_received(received: Received) -> Received:
    return Received(tuple(map(clean_message, received.messages)), tuple(map(_clean_event, received.events)))


def _clean_event(event: Event) -> Event:
    match event:
        case Blocked() | Opened():
            return dataclasses.replace(event, person=clean_person(event.person))
        case ChatMoved(old, new):
            return ChatMoved(_clean_id(old), _clean_id(new))
        case DeliveryReport():
            return dataclasses.replace(
                event,
                platform_id=_clean_id(event.platform_id),
                status=clean_text(event.status)[:32],
                reason=clean_text(event.reason)[:500],
                again=clean_json(event.again) if event.again is not None else None,
            )


def _clean_id(value: str) -> str:
    cleaned = clean_text(value)
    if not cleaned or len(cleaned) > ID_LIMIT:
        raise Unstorable("id missing or too long")
    return cleaned


# Row -> record: the one place that does it. Reads select these columns (SQLAlchemy Core) and
# hand the rows' mappings here; freshly inserted rows are the mappings that were inserted.
C = ConversationRow.__table__.c
M = MessageRow.__table__.c
P = PartRow.__table__.c
CONVERSATION: list[Any] = [C.id, C.channel, C.person_key, C.address, C.person_name, C.platform]
CONVERSATION += [C.session_id, C.state]
MESSAGE: list[Any] = [M.id, M.public_id, M.conversation_id, M.channel, M.kind, M.text, M.what, M.status]
MESSAGE += [M.attempts, M.next_attempt_at, M.error, M.received_at, M.relayed_at, M.context]
PART: list[Any] = [P.id, P.conversation_id, P.message_id, P.seq, P.text, P.attachments, P.status]
PART += [P.attempts, P.next_attempt_at, P.error, P.created_at, P.delivery_status]


def to_conversation(row: Mapping[Any, Any]) -> Conversation:
    person = Person(
        key=row["person_key"], address=row["address"], name=row["person_name"], platform=row["platform"]
    )
    return Conversation(
        id=row["id"],
        channel=row["channel"],
        person=person,
        session_id=row["session_id"],
        state=dict(row["state"] or {}),
    )


def to_message(row: Mapping[Any, Any]) -> StoredMessage:
    values = {column.name: row[column.name] for column in MESSAGE}
    return StoredMessage(**values | {"context": dict(row["context"] or {})})


def to_part(row: Mapping[Any, Any], message_ref: str | None = None) -> StoredPart:
    values = {column.name: row[column.name] for column in PART}
    attachments = tuple(Attachment(**a) for a in row["attachments"] or ())
    return StoredPart(**values | {"attachments": attachments, "message_ref": message_ref})


def to_schedule(row: Any) -> Schedule:
    return Schedule(row.id, row.name, row.prompt, row.due_at, row.fired_at)


def to_dead_letter(row: Any) -> DeadLetter:
    """A row of ``letters.DEAD``."""
    ref = f"{row.kind}-{row.id}"
    return DeadLetter(ref, row.channel, row.person_key, row.at, row.error or "", row.expired_at is not None)


def attachments_json(attachments: tuple[Attachment, ...]) -> list[dict[str, Any]]:
    return [
        {"name": a.name, "url": a.url, "content_type": a.content_type, "size": a.size} for a in attachments
    ]
