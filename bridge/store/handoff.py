"""Human handoff in the store (open.cx): which session a human agent has, which one the bot's
side closed, both kept in the conversation's state under the session's id (a new session is
neither), and the next history read of a conversation brought forward."""

from __future__ import annotations

import json
from collections.abc import Collection

from sqlalchemy import ColumnElement, String, bindparam, select, update

from bridge.store.proactive_tables import HistoryCursorRow
from bridge.store.repo import Store
from bridge.store.tables import ConversationRow, utcnow

HANDOFF = "handoff"  # state key: the session a human agent has
CLOSED = "closed"  # state key: the session the bot's side closed


def handed_off() -> ColumnElement[bool]:
    """Conversations whose current session is with a human agent."""
    c = ConversationRow
    return c.state[HANDOFF].as_string() == c.session_id


async def mark(store: Store, conversation_id: int, key: str, session_id: str) -> None:
    """Note in the state that ``session_id`` is handed off (``HANDOFF``) or closed (``CLOSED``)."""
    c = ConversationRow
    patch = bindparam("h_patch", json.dumps({key: session_id}), type_=String())
    async with store.writing() as session:
        await session.execute(
            update(c).where(c.id == conversation_id).values(state=store.inbound.merged(c.state, patch))
        )


async def with_session(store: Store, channels: Collection[str], session_id: str) -> list[int]:
    """The conversations (of these channels) whose current session is ``session_id``."""
    c = ConversationRow
    async with store.reading() as session:
        query = select(c.id).where(c.session_id == session_id, c.channel.in_(channels))
        return list(await session.scalars(query))


async def read_soon(store: Store, conversation_id: int) -> None:
    """The conversation's history is due for a read now (not at the end of its interval)."""
    h = HistoryCursorRow
    async with store.writing() as session:
        await session.execute(
            update(h).where(h.conversation_id == conversation_id).values(read_after=utcnow())
        )


async def forget_session(store: Store, conversation_id: int, session_id: str) -> None:
    """The session was closed and its history read: the next message opens a new one."""
    c = ConversationRow
    async with store.writing() as session:
        await session.execute(
            update(c).where(c.id == conversation_id, c.session_id == session_id).values(session_id=None)
        )
