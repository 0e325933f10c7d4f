"""The store as channels, the web API and the CLI see it: conversations, messages, reply parts."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bridge.model import Conversation, InboundMessage, Person
from bridge.store.db import sessionmaker
from bridge.store.records import (
    Accepted,
    StoredMessage,
    StoredPart,
    clean_json,
    clean_message,
    clean_person,
    clean_text,
    to_conversation,
    to_message,
    to_part,
)
from bridge.store.tables import ConversationRow, MessageRow, PartRow, utcnow

_DELIVERY_RANK = {
    "accepted": 0,
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "read": 4,
}


class Store:
    """Conversations, inbound messages and reply parts (see ``bridge.store.queue`` for the worker side)."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        self._writer = sessionmaker(engine)
        if engine.dialect.name == "sqlite":
            # SQLite has one writer at a time: queue writers here, in order, rather than in
            # SQLite's busy handler (which sleeps up to 100 ms between tries); readers run
            # beside them (WAL) in plain deferred transactions.
            self._reader = sessionmaker(engine.execution_options(readonly=True))
            self._write_lock: asyncio.Lock | None = asyncio.Lock()
        else:
            self._reader = self._writer
            self._write_lock = None

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on exit."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self._writer())
            await stack.enter_async_context(session.begin())
            yield session

    def reading(self) -> AsyncSession:
        """A session for reads only."""
        return self._reader()

    # inbound ------------------------------------------------------------------------------------
    async def accept(self, message: InboundMessage, *, unblock: bool = True) -> Accepted:
        """Store a message durably in one transaction; a platform retry is recognised. With
        ``unblock``, a blocked person who writes again can be answered again.

        Raises ``Unstorable`` for ids empty or too long to store (the caller answers 400)."""
        message = clean_message(message)
        try:
            async with self.writing() as session:
                existing = await self._find_message(session, message.channel, message.platform_id)
                if existing is not None:
                    return Accepted(existing.id, existing.public_id, existing.conversation_id, True)
                conversation_id = await self._upsert_conversation(
                    session, message.channel, message.person, unblock=unblock
                )
                if message.state:  # e.g. the number the person wrote to, for the replies
                    conversation = await session.get(ConversationRow, conversation_id)
                    assert conversation is not None
                    if {**conversation.state, **message.state} != conversation.state:
                        conversation.state = {**conversation.state, **message.state}
                row = MessageRow(
                    public_id=secrets.token_urlsafe(16),
                    conversation_id=conversation_id,
                    channel=message.channel,
                    platform_id=message.platform_id,
                    kind=message.kind.value,
                    text=message.text,
                    what=message.what,
                    context=message.context,
                )
                session.add(row)
                await session.flush()
                return Accepted(row.id, row.public_id, conversation_id, duplicate=False)
        except IntegrityError:  # the same platform message accepted concurrently by another process
            async with self.reading() as session:
                existing = await self._find_message(session, message.channel, message.platform_id)
            if existing is None:
                raise
            return Accepted(existing.id, existing.public_id, existing.conversation_id, duplicate=True)

    async def _find_message(self, session: AsyncSession, channel: str, platform_id: str) -> MessageRow | None:
        return await session.scalar(
            select(MessageRow).where(MessageRow.channel == channel, MessageRow.platform_id == platform_id)
        )

    async def _upsert_conversation(
        self, session: AsyncSession, channel: str, person: Person, *, work: bool = True, unblock: bool = False
    ) -> int:
        """Create or touch the conversation; with ``work``, mark it as having something to do."""
        now = utcnow()
        values = {
            "channel": channel,
            "person_key": person.key,
            "address": person.address,
            "person_name": person.name,
            "platform": person.platform,
            "state": {},
            "blocked": False,
            "inbox_seq": 1 if work else 0,
            "next_run_at": now if work else None,
            "last_activity_at": now,
            "created_at": now,
        }
        insert = (postgresql.insert if self.is_postgres else sqlite.insert)(ConversationRow).values(values)
        table = ConversationRow.__table__.c
        changes: dict[str, Any] = {"address": person.address}
        if person.name:
            changes["person_name"] = person.name
        if work:
            changes |= {
                "inbox_seq": table.inbox_seq + 1,
                "next_run_at": func.coalesce(table.next_run_at, now),
            }
        if unblock:
            changes["blocked"] = False
        statement = insert.on_conflict_do_update(
            index_elements=["channel", "person_key"], set_=changes
        ).returning(table.id)
        return int((await session.execute(statement)).scalar_one())

    # conversations ------------------------------------------------------------------------------
    async def conversation(self, channel: str, key: str) -> Conversation | None:
        async with self.reading() as session:
            row = await session.scalar(
                select(ConversationRow).where(
                    ConversationRow.channel == channel, ConversationRow.person_key == clean_text(key)
                )
            )
            return None if row is None else to_conversation(row)

    async def conversations_at(self, channel: str, address: str) -> list[Conversation]:
        """Every conversation of a channel that replies to ``address`` (one chat, several people)."""
        c = ConversationRow
        async with self.reading() as session:
            rows = await session.scalars(select(c).where(c.channel == channel, c.address == address))
            return [to_conversation(r) for r in rows]

    async def conversations_with(self, channel: str, field: str, value: str) -> list[Conversation]:
        """Conversations of a channel whose state has ``field == value`` (oldest first)."""
        c = ConversationRow
        async with self.reading() as session:
            rows = await session.scalars(
                select(c)
                .where(c.channel == channel, c.state[field].as_string() == clean_text(value))
                .order_by(c.id)
            )
            return [to_conversation(r) for r in rows]

    async def open_conversation(
        self, channel: str, person: Person, state: dict[str, Any] | None = None
    ) -> Conversation:
        """Get or create the conversation; ``state`` (if given) is merged into its stored state."""
        person = clean_person(person)
        async with self.writing() as session:
            conversation_id = await self._upsert_conversation(session, channel, person, work=False)
            row = await session.get(ConversationRow, conversation_id, populate_existing=True)
            assert row is not None
            if state:
                row.state = {**(row.state or {}), **clean_json(state)}
            return to_conversation(row)

    async def set_session(self, conversation_id: int, session_id: str | None) -> None:
        async with self.writing() as session:
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id)
                .values(session_id=session_id, last_activity_at=utcnow())
            )

    async def set_blocked(
        self, channel: str, key: str, blocked: bool, *, person: Person | None = None
    ) -> None:
        """A blocked person gets nothing more; their pending parts are skipped. With ``person``
        (whose key is ``key``), one the bridge has not heard from yet is kept too (an SMS STOP as
        the very first message holds for what they write next)."""
        async with self.writing() as session:
            if person is not None:
                await self._upsert_conversation(session, channel, clean_person(person), work=False)
            conversation_id = await session.scalar(
                update(ConversationRow)
                .where(ConversationRow.channel == channel, ConversationRow.person_key == clean_text(key))
                .values(blocked=blocked)
                .returning(ConversationRow.id)
            )
            if blocked and conversation_id is not None:
                await skip_pending_parts(session, conversation_id, "person blocked the bot")

    async def block_conversation(self, conversation_id: int, reason: str) -> None:
        """The person cannot be reached: send nothing more until they write again."""
        async with self.writing() as session:
            await session.execute(
                update(ConversationRow).where(ConversationRow.id == conversation_id).values(blocked=True)
            )
            await skip_pending_parts(session, conversation_id, reason)

    async def rekey_conversation(self, channel: str, old_key: str, new_key: str, new_address: str) -> None:
        """The platform renamed the chat (Telegram group -> supergroup): keep the conversation."""
        async with self.writing() as session:
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.channel == channel, ConversationRow.person_key == old_key)
                .values(person_key=new_key, address=new_address)
            )

    # reading back (web channel, CLI) ------------------------------------------------------------
    async def message(self, public_id: str) -> StoredMessage | None:
        async with self.reading() as session:
            row = await session.scalar(
                select(MessageRow).where(MessageRow.public_id == clean_text(public_id))
            )
            return None if row is None else to_message(row)

    async def parts_of(self, message_id: int) -> list[StoredPart]:
        async with self.reading() as session:
            rows = await session.scalars(
                select(PartRow).where(PartRow.message_id == message_id).order_by(PartRow.id)
            )
            return [to_part(r) for r in rows]

    async def mark_fetched(self, message_id: int) -> None:
        """The widget fetched the answer to this message (its task poll): don't show it again."""
        async with self.writing() as session:
            await session.execute(
                update(PartRow)
                .where(PartRow.message_id == message_id, PartRow.delivery_status.is_(None))
                .values(delivery_status="fetched")
            )

    async def parts_since(self, conversation_id: int, since: datetime | None) -> list[StoredPart]:
        query = select(PartRow).where(PartRow.conversation_id == conversation_id)
        if since is not None:
            query = query.where(PartRow.created_at > since)
        async with self.reading() as session:
            return [to_part(r) for r in await session.scalars(query.order_by(PartRow.id))]

    async def enqueue_parts(
        self, conversation_id: int, texts: list[str], message_id: int | None = None
    ) -> list[int]:
        """Queue outbound parts (a proactive message) and wake the conversation. Texts are
        cleaned; one left empty by that is not a part."""
        cleaned = [t for t in map(clean_text, texts) if t.strip()]
        async with self.writing() as session:
            rows = [
                PartRow(conversation_id=conversation_id, message_id=message_id, seq=i, text=t)
                for i, t in enumerate(cleaned)
            ]
            session.add_all(rows)
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id)
                .values(
                    inbox_seq=ConversationRow.inbox_seq + 1,
                    next_run_at=func.coalesce(ConversationRow.next_run_at, utcnow()),
                )
            )
            await session.flush()
            return [r.id for r in rows]

    async def record_delivery(self, channel: str, platform_id: str, status: str, reason: str) -> int | None:
        """Keep a platform's delivery report on the part it sent (reports may come out of order:
        a status only ever moves forward). The part's conversation id, or None if unknown."""
        rank = _DELIVERY_RANK.get(status, 0)
        async with self.writing() as session:
            row = await session.scalar(
                select(PartRow)
                .join(ConversationRow, ConversationRow.id == PartRow.conversation_id)
                .where(PartRow.platform_message_id == platform_id, ConversationRow.channel == channel)
            )
            if row is None:
                return None
            if rank > _DELIVERY_RANK.get(row.delivery_status or "", -1):
                row.delivery_status = status
                if reason:
                    row.error = reason
                if status in ("failed", "undelivered"):  # a dead letter: visible and retryable
                    row.status = "dead"
            return row.conversation_id

    async def depth(self) -> int:
        """Messages waiting for the bot plus parts waiting to be delivered."""
        async with self.reading() as session:
            messages = await session.scalar(select(func.count()).where(MessageRow.status == "pending"))
            parts = await session.scalar(select(func.count()).where(PartRow.status == "pending"))
            return int(messages or 0) + int(parts or 0)

    async def ping(self) -> None:
        async with self.reading() as session:
            await session.execute(select(1))


async def skip_pending_parts(session: AsyncSession, conversation_id: int, reason: str) -> None:
    await session.execute(
        update(PartRow)
        .where(PartRow.conversation_id == conversation_id, PartRow.status == "pending")
        .values(status="skipped", error=reason)
    )
