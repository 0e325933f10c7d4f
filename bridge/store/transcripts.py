"""What a voice note said, kept with its message (in its context, by the note's ref) as soon as it
is known, before the bot is called: a retry or a crash never pays for the same note twice.
Retention and erasure take it with the message's context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select, update

from bridge.store.records import clean_json
from bridge.store.tables import MessageRow

M = MessageRow.__table__.c
TRANSCRIPTS_KEY = "transcripts"  # the message context's {note ref: what it said}


def heard(context: Mapping[str, Any]) -> dict[str, str]:
    """The transcripts stored with a message, by the ref of the note each came from."""
    found = context.get(TRANSCRIPTS_KEY)
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def save(connection: Connection, message_id: int, ref: str, text: str) -> None:
    """A Writer operation: merge one note's transcript into its message's context."""
    context = dict(connection.scalar(select(M.context).where(M.id == message_id)) or {})
    context[TRANSCRIPTS_KEY] = heard(context) | {ref: text}
    connection.execute(update(MessageRow).where(M.id == message_id).values(context=clean_json(context)))
