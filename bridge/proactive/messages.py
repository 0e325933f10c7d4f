"""Proactive messages travel as inbound rows of the person's conversation, so the worker handles
them durably and in order with everything else the person has pending: ``Kind.PROMPT`` asks the
bot in the person's session, ``Kind.DELIVER`` is delivered as is. Their ``platform_id`` makes each
one happen once, whichever process stores it (the unique (channel, platform_id) index)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.model import Attachment, InboundMessage, Kind, Person, Reply
from bridge.store.records import Accepted, StoredMessage, attachments_json

if TYPE_CHECKING:
    from bridge.core import Core

ATTACHMENTS = "attachments"


def deliver(
    channel: str, person: Person, platform_id: str, text: str, attachments: tuple[Attachment, ...] = ()
) -> InboundMessage:
    context = {ATTACHMENTS: attachments_json(attachments)} if attachments else {}
    return InboundMessage(channel, platform_id, person, kind=Kind.DELIVER, text=text, context=context)


def prompt(channel: str, person: Person, platform_id: str, text: str) -> InboundMessage:
    return InboundMessage(channel, platform_id, person, kind=Kind.PROMPT, text=text)


def stored_reply(message: StoredMessage) -> Reply:
    """What a ``Kind.DELIVER`` row carries, as a reply to shape for the platform."""
    files = message.context.get(ATTACHMENTS) or ()
    return Reply(text=message.text, attachments=tuple(Attachment(**f) for f in files))


async def enqueue(core: Core, message: InboundMessage) -> Accepted:
    """Store one proactive message (a person who blocked the bot stays blocked) and wake the workers."""
    accepted = await core.store.accept(message, unblock=False)
    if not accepted.duplicate:
        core.wake()
    return accepted
