"""A bot's reply shaped for a channel: its parts, each a text that fits and the files it carries."""

from __future__ import annotations

from bridge.channel import Channel
from bridge.model import Attachment, Reply
from bridge.split import split_text
from bridge.store.records import clean_text

Parts = list[tuple[str, tuple[Attachment, ...]]]


def shape(channel: Channel, reply: Reply) -> Parts:
    """The reply split to fit the channel; its files go with the last part, or as named links
    where the channel cannot send a file from a URL."""
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
