"""The follower's side of the store: which conversations to read the bot-side history of, a
claim on the next read (so that processes never read one history at once), and the cursor."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select, update
from sqlalchemy.exc import IntegrityError

from bridge.model import Conversation
from bridge.store.handoff import handed_off
from bridge.store.proactive_tables import HistoryCursorRow
from bridge.store.records import to_conversation
from bridge.store.repo import Store
from bridge.store.tables import ConversationRow, MessageRow, utcnow


@dataclass(frozen=True, slots=True)
class Claim:
    conversation: Conversation
    position: str | None  # the bot's cursor for this conversation's session (None: from its start)


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
    store: Store, channels: Collection[str], active: Collection[str], since: datetime, limit: int
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


async def claim_read(
    store: Store, conversation_id: int, active: Collection[str], since: datetime, until: datetime
) -> Claim | None:
    """Take the next read of this conversation's history until ``until``; None if it is not due,
    another process has it, or the conversation waits for the bot."""
    now = utcnow()
    c, h = ConversationRow, HistoryCursorRow
    try:
        async with store.writing() as session:
            row = await session.scalar(
                select(c).where(c.id == conversation_id, followed(since, active), not_(waiting(now)))
            )
            if row is None or row.session_id is None:
                return None
            cursor = await session.get(h, conversation_id, with_for_update=store.is_postgres)
            if cursor is None:
                session.add(h(conversation_id=conversation_id, session_id=row.session_id, read_after=until))
                await session.flush()
                return Claim(to_conversation(row), None)
            if cursor.read_after > now:
                return None
            if cursor.session_id != row.session_id:  # a new session: its history from the start
                cursor.session_id, cursor.position = row.session_id, None
            cursor.read_after = until
            return Claim(to_conversation(row), cursor.position)
    except IntegrityError:  # another process created the cursor at the same moment: theirs
        return None


async def advance(store: Store, conversation_id: int, session_id: str, position: str | None) -> None:
    """Everything before ``position`` in this session's history is delivered (or not for the person)."""
    h = HistoryCursorRow
    async with store.writing() as session:
        await session.execute(
            update(h)
            .where(h.conversation_id == conversation_id, h.session_id == session_id)
            .values(position=position)
        )


async def position(store: Store, conversation_id: int, session_id: str) -> str | None:
    """The follower's cursor in this session's history (None: nothing of it read yet)."""
    h = HistoryCursorRow
    query = select(h.position).where(h.conversation_id == conversation_id, h.session_id == session_id)
    async with store.reading() as session:
        return await session.scalar(query)
