"""The follower's side of the store: which conversations to read the bot-side history of, a
claim on the next read (so that processes never read one history at once), and the cursor.
The claim and the cursor's advance are Writer operations (``Store.claim_read``, ``Store.advance``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, exists, func, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.model import Conversation
from bridge.store.db import Reader
from bridge.store.handoff import handed_off
from bridge.store.proactive_tables import HistoryCursorRow
from bridge.store.records import CONVERSATION, to_conversation
from bridge.store.tables import ConversationRow, MessageRow, utcnow

C = ConversationRow.__table__.c
H = HistoryCursorRow.__table__.c


@dataclass(frozen=True, slots=True)
class Claim:
    conversation: Conversation
    position: str | None  # the bot's cursor for this conversation's session (None: from its start)
    closed: bool  # the bot's side closed this session (an event said so)


def followed(since: datetime, active: Collection[str]) -> ColumnElement[bool]:
    """Which conversations have their history read: a session, active since ``since`` in the
    ``active`` channels (their bot writes by itself), or handed off to a human agent (however old)."""
    c = ConversationRow
    recent = and_(c.channel.in_(active), c.last_activity_at >= since)
    return and_(c.session_id.is_not(None), c.blocked.is_(False), or_(recent, handed_off()))


def waiting(now: datetime) -> ColumnElement[bool]:
    """Conversations waiting for the bot anyway: a message pending, or a worker holding them."""
    c = ConversationRow
    pending = exists().where(MessageRow.conversation_id == c.id, MessageRow.status == "pending")
    return or_(pending, and_(c.lease_until.is_not(None), c.lease_until > now))  # (NULL is not false)


async def to_read(
    store: Reader, channels: Collection[str], active: Collection[str], since: datetime, limit: int
) -> list[int]:
    """Conversations of these channels whose history is due for a read, longest unread first."""
    now = utcnow()
    c, h = ConversationRow, HistoryCursorRow
    query = (
        select(c.id)
        .outerjoin(h, h.conversation_id == c.id)
        .where(
            c.channel.in_(channels),
            followed(since, active),
            not_(waiting(now)),
            or_(h.read_after.is_(None), h.read_after <= now),
        )
        .order_by(func.coalesce(h.read_after, c.created_at))
        .limit(limit)
    )
    async with store.reading() as session:
        return list(await session.scalars(query))


def claim_read(
    connection: Connection, conversation_id: int, active: Collection[str], since: datetime, until: datetime
) -> Claim | None:
    """Take the next read of this conversation's history until ``until``; None if it is not due,
    another process has it, or the conversation waits for the bot. (A Writer operation.)"""
    now = utcnow()
    row = connection.execute(
        select(*CONVERSATION, C.closed_session).where(
            C.id == conversation_id, followed(since, active), not_(waiting(now))
        )
    ).first()
    if row is None or row.session_id is None:
        return None
    claim = Claim(to_conversation(row._mapping), None, row.closed_session == row.session_id)
    postgres = connection.dialect.name == "postgresql"
    read = select(H.session_id, H.position, H.read_after).where(H.conversation_id == conversation_id)
    cursor = connection.execute(read.with_for_update() if postgres else read).first()
    if cursor is None:  # the first read; another process creating the cursor at once has it
        values = {"conversation_id": conversation_id, "session_id": row.session_id, "read_after": until}
        insert = (postgresql.insert if postgres else sqlite.insert)(HistoryCursorRow).values(values)
        created = connection.scalar(insert.on_conflict_do_nothing().returning(H.conversation_id))
        return claim if created is not None else None
    if cursor.read_after > now:
        return None
    position = (
        cursor.position if cursor.session_id == row.session_id else None
    )  # a new session: from its start
    connection.execute(
        update(HistoryCursorRow)
        .where(H.conversation_id == conversation_id)
        .values(session_id=row.session_id, position=position, read_after=until)
    )
    return dataclasses.replace(claim, position=position)


def advance(connection: Connection, conversation_id: int, session_id: str, position: str | None) -> None:
    """Everything before ``position`` in this session's history is delivered (or not for the
    person). (A Writer operation.)"""
    connection.execute(
        update(HistoryCursorRow)
        .where(H.conversation_id == conversation_id, H.session_id == session_id)
        .values(position=position)
    )


async def position(store: Reader, conversation_id: int, session_id: str) -> str | None:
    """The follower's cursor in this session's history (None: nothing of it read yet)."""
    h = HistoryCursorRow
    query = select(h.position).where(h.conversation_id == conversation_id, h.session_id == session_id)
    async with store.reading() as session:
        return await session.scalar(query)
