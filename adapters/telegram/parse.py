"""Telegram ``Update`` -> ``InboundMessage`` (pure: no I/O, testable from recorded payloads)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatMemberStatus, ChatType, MessageAttachmentType

from bridge.errors import BadRequest
from bridge.model import Blocked, ChatMoved, Event, InboundMessage, Kind, Media, Person, Received

PLATFORM = "telegram"
COMMANDS = {"start": Kind.START, "reset": Kind.RESET, "help": Kind.HELP}
_GROUPS = {ChatType.GROUP, ChatType.SUPERGROUP}
# Venue messages also carry a location: name the more specific kind first.
_CONTENT = ("venue", *(str(t) for t in MessageAttachmentType if t != MessageAttachmentType.VENUE))
# Files the bot can be given (fetched later with getFile). An animation also comes as a document:
# the more specific kind first. Stickers, locations and contacts stay unsupported.
MEDIA = ("animation", "photo", "video", "video_note", "voice", "audio", "document")


@dataclass(frozen=True, slots=True)
class Rules:
    """What the parser needs to know about the channel and its bot."""

    channel: str
    bot_id: int  # the numeric prefix of the token
    username: str = ""  # the bot's @username (lower case, no "@"); "" while unknown
    group_trigger: Literal["mention", "all"] = "mention"
    group_conversation: Literal["chat", "person"] = "chat"
    help_enabled: bool = True  # /help is answered by the bridge (else relayed as text)


def decode(body: bytes) -> Update:
    """Parse a webhook body with PTB's own ``Update.de_json``; ``BadRequest`` if malformed."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        raise BadRequest("not a Telegram update")
    try:
        return Update.de_json(data, None)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BadRequest("malformed Telegram update") from None


def messages(update: Update, rules: Rules) -> list[InboundMessage]:
    """The message the bridge should answer, if the update carries one (else an empty list)."""
    message = update.message  # edits, channel posts, member updates... are not answered
    if message is None or message.chat.type not in {ChatType.PRIVATE, *_GROUPS}:
        return []
    user = message.from_user
    if message.is_automatic_forward or (user is not None and user.is_bot and message.sender_chat is None):
        return []
    text = message.text or message.caption or ""
    what = _content_kind(message)
    if not text and not what:
        return []  # a service message (member joined, pinned, migrated...)
    group = message.chat.type in _GROUPS
    kind, text = _command(message, text, rules, group)
    if kind is None:
        return []
    if group and kind is Kind.TEXT and not _addressed(message, rules):
        return []
    if group and kind is Kind.TEXT:
        text = _strip_mention(message, text, rules)
    media = media_of(message) if kind is Kind.TEXT else ()
    if kind is Kind.TEXT and not text:
        if group and not _replies_to_bot(message, rules):
            return []  # a sticker in a group is not for the bot unless it answers the bot
        if not media:
            kind = Kind.UNSUPPORTED
    return [
        InboundMessage(
            channel=rules.channel,
            platform_id=str(update.update_id),
            person=_person(message, rules, group),
            kind=kind,
            text=text,
            what=what if kind is Kind.UNSUPPORTED else "",
            context=_context(message, what),
            media=media,
        )
    ]


def received(update: Update, rules: Rules) -> Received:
    """The message to answer, if any, and the platform events the update carries."""
    events: list[Event] = []
    moved = migration(update)
    if moved is not None:  # the group's conversation, or each person's in a per-person group
        events.append(ChatMoved(str(moved[0]), str(moved[1])))
    member = membership(update)
    if member is not None:
        chat = str(member[0])
        events.append(Blocked(Person(key=chat, address=chat, platform=PLATFORM), blocked=member[1]))
    return Received(tuple(messages(update, rules)), tuple(events))


def migration(update: Update) -> tuple[int, int] | None:
    """(old chat id, new chat id) when a group became a supergroup."""
    message = update.message
    if message is None:
        return None
    if message.migrate_to_chat_id:
        return message.chat.id, message.migrate_to_chat_id
    if message.migrate_from_chat_id:
        return message.migrate_from_chat_id, message.chat.id
    return None


def membership(update: Update) -> tuple[int, bool] | None:
    """(chat id, blocked) when the bot's own membership changed (blocked, kicked, restarted)."""
    change = update.my_chat_member
    if change is None:
        return None
    status = change.new_chat_member.status
    gone = status in {ChatMemberStatus.BANNED, ChatMemberStatus.LEFT}
    return change.chat.id, gone


def conversation_key(chat_id: int, user_id: int | None, rules: Rules, group: bool) -> str:
    if group and rules.group_conversation == "person" and user_id is not None:
        return f"{chat_id}:{user_id}"
    return str(chat_id)


# details ----------------------------------------------------------------------------------------


def _content_kind(message: Message) -> str:
    for name in _CONTENT:
        if getattr(message, name, None):
            return name.replace("_", " ")
    return ""


def media_of(message: Message) -> tuple[Media, ...]:
    """The file the message carries, as the update describes it (a photo: its largest size)."""
    for kind in MEDIA:
        found = getattr(message, kind, None)
        if not found:
            continue
        if kind == "photo":
            found = max(found, key=lambda size: (size.width * size.height, size.file_size or 0))
        item = found.to_dict()  # plain values (PTB 22 would warn on ``duration``)
        duration = item.get("duration")
        return (
            Media(
                kind=kind,
                ref=item["file_id"],
                name=item.get("file_name") or "",
                content_type=item.get("mime_type") or "",
                size=item.get("file_size"),
                seconds=float(duration) if isinstance(duration, int | float) else None,
            ),
        )
    return ()


def _entities(message: Message) -> dict[MessageEntity, str]:
    if message.text:
        return message.parse_entities()
    return message.parse_caption_entities() if message.caption else {}


def _command(message: Message, text: str, rules: Rules, group: bool) -> tuple[Kind | None, str]:
    """The bridge command the text starts with (``/start``, ``/reset@bot``...), else TEXT."""
    for entity, value in _entities(message).items():
        if entity.type != MessageEntity.BOT_COMMAND or entity.offset != 0:
            continue
        name, _, target = value[1:].partition("@")
        if target and rules.username and target.lower() != rules.username:
            return (None, text) if group else (Kind.TEXT, text)  # meant for another bot
        kind = COMMANDS.get(name.lower())
        if kind is Kind.HELP and not rules.help_enabled:
            kind = None
        if kind is not None:
            return kind, text[len(value) :].strip()
        if group and not target and rules.group_trigger == "mention":
            return None, text  # someone else's bare command
    return Kind.TEXT, text


def _replies_to_bot(message: Message, rules: Rules) -> bool:
    replied = message.reply_to_message
    return bool(replied and replied.from_user and replied.from_user.id == rules.bot_id)


def _mentions(message: Message, rules: Rules) -> list[str]:
    found = []
    for entity, value in _entities(message).items():
        if (
            entity.type == MessageEntity.MENTION and rules.username and value[1:].lower() == rules.username
        ) or (entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == rules.bot_id):
            found.append(value)
    return found


def _addressed(message: Message, rules: Rules) -> bool:
    if rules.group_trigger == "all":
        return True
    return _replies_to_bot(message, rules) or bool(_mentions(message, rules))


def _strip_mention(message: Message, text: str, rules: Rules) -> str:
    """ "@bot what is X?" -> "what is X?" (a bare "@bot" stays as it is)."""
    stripped = text
    for value in _mentions(message, rules):
        if value.startswith("@"):
            stripped = stripped.replace(value, " ")
    stripped = re.sub(r"[ \t]{2,}", " ", stripped).strip(" ,:")
    return stripped or text


def _person(message: Message, rules: Rules, group: bool) -> Person:
    chat = message.chat
    sender = message.sender_chat or message.from_user
    sender_id = sender.id if sender is not None else None
    key = conversation_key(chat.id, sender_id, rules, group)
    if group and rules.group_conversation == "chat":
        name = chat.title or ""
    elif message.sender_chat is not None:
        name = message.sender_chat.title or ""
    else:
        name = message.from_user.full_name if message.from_user else (chat.full_name or "")
    return Person(key=key, address=str(chat.id), name=name, platform=PLATFORM)


def _context(message: Message, what: str) -> dict[str, Any]:
    user = message.from_user
    context: dict[str, Any] = {
        "chat_id": message.chat.id,
        "chat_type": str(message.chat.type),
        "message_id": message.message_id,
    }
    if user is not None:
        context["user_id"] = user.id
        if user.username:
            context["username"] = user.username
        if user.language_code:
            context["language_code"] = user.language_code
    if what:
        context["attachment"] = what
    return context
