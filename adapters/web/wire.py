"""The Chat API's JSON shapes, as the official widget reads them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bridge.errors import BadRequest
from bridge.model import Attachment
from bridge.store import StoredMessage, StoredPart

PROGRESS_EVERY = 5  # seconds one progress line shows (OCS: a new one every 5 s)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, ``Z``-suffixed: the widget sends it back as ``since``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
        # In UTC here: a time whose offset pushes it past year 1 or 9999 overflows (400, not 500).
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise BadRequest("'since' must be an ISO 8601 time") from None


def attachment_json(attachment: Attachment) -> dict[str, Any]:
    return {
        "name": attachment.name,
        "content_type": attachment.content_type or None,
        "size": attachment.size,
        "content_url": attachment.url,
    }


def assistant_message(parts: Sequence[StoredPart], *, links: bool) -> dict[str, Any]:
    """One widget message from one or more stored parts (a reply's parts read as one)."""
    texts = [p.text for p in parts if p.text]
    attachments = [a for p in parts for a in p.attachments]
    if links and attachments:
        texts.append("\n".join(f"[{_label(a.name)}]({a.url})" for a in attachments))
    return {
        "created_at": iso(parts[-1].created_at),
        "role": "assistant",
        "content": "\n\n".join(texts),
        "attachments": [attachment_json(a) for a in attachments],
    }


def _label(name: str) -> str:
    return name.replace("[", "(").replace("]", ")") or "file"


def user_message(message: StoredMessage) -> dict[str, Any]:
    """What the person wrote, as the history shows it."""
    return {
        "created_at": iso(message.received_at),
        "role": "user",
        "content": message.text,
        "attachments": [],
    }


def history_message(item: StoredMessage | StoredPart, *, links: bool) -> dict[str, Any]:
    if isinstance(item, StoredMessage):
        return user_message(item)
    return assistant_message([item], links=links)


def progress_message(text: str, since: datetime, now: datetime) -> dict[str, Any] | None:
    """While the bot thinks: the line of ``text`` for the current few seconds (its lines in turn,
    from when the message arrived), or None when there is no progress text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    step = int((now - since).total_seconds() // PROGRESS_EVERY)
    return {
        "created_at": iso(now),
        "role": "assistant",
        "content": lines[step % len(lines)],
        "attachments": [],
    }
