"""The store as channels, the web API and the CLI see it: conversations, messages, reply parts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bridge.model import Conversation, InboundMessage, Kind, Person, Received
from bridge.store import events
from bridge.store.db import sessionmaker, sqlite_writer_engine
from bridge.store.inbound import Inbound
from bridge.store.records import (
    Accepted,
    Backlog,
    StoredMessage,
    StoredPart,
    clean_json,
    clean_person,
    clean_received,
    clean_text,
    to_conversation,
    to_message,
    to_part,
)
from bridge.store.tables import ConversationRow, HeartbeatRow, MessageRow, PartRow, utcnow
from bridge.store.writer import Writer

C = ConversationRow.__table__.c
# What a person wrote (not the bridge's own proactive work, nor the widget's "new chat")
_WRITTEN = [k.value for k in Kind if k not in (Kind.END, Kind.PROMPT, Kind.DELIVER)]
_FORGET = timedelta(days=1)  # heartbeats older than this are deleted


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
        sqlite = sqlite_writer_engine(engine) if engine.dialect.name == "sqlite" else None
        self.writer = Writer(engine, sqlite, self._write_lock)
        self.inbound = Inbound(self.is_postgres)

    async def close(self) -> None:
        """Finish the writes under way (the engine is the caller's to dispose of)."""
        await self.writer.close()

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
    async def receive(
        self, channel: str, received: Received, *, unblock: bool = True, release_held: bool = False
    ) -> list[Accepted]:
        """Store a verified request's events and messages durably, in one transaction; a platform's
        retry of a message is recognised (by the unique index, in the same statement), and events are
        safe to apply twice. With ``unblock``, a blocked person who writes again can be answered
        again; with ``release_held``, what was held until they wrote goes out now. Concurrent calls
        share a commit (see ``Writer``) and go before the workers' writes.

        Raises ``Unstorable`` for ids empty or too long to store (the caller answers 400)."""
        received = clean_received(received)
        return await self.writer(
            functools.partial(
                self.inbound.receive,
                channel=channel,
                received=received,
                unblock=unblock,
                release_held=release_held,
            ),
            urgent=True,
        )

    async def accept(
        self, message: InboundMessage, *, unblock: bool = True, release_held: bool = False
    ) -> Accepted:
        """One message on its own (a proactive one, a test's)."""
        received = Received(messages=(message,))
        return (await self.receive(message.channel, received, unblock=unblock, release_held=release_held))[0]

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

        def open_conversation(connection: Connection) -> Conversation:
            conversation_id = self.inbound.upsert_conversation(
                connection, channel, person, work=False, state=clean_json(state) if state else None
            )
            row = connection.execute(select(ConversationRow.__table__).where(C.id == conversation_id)).one()
            return to_conversation(row)  # type: ignore[arg-type]

        return await self.writer(open_conversation)

    async def set_session(self, conversation_id: int, session_id: str | None) -> None:
        async with self.writing() as session:
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id)
                .values(session_id=session_id, last_activity_at=utcnow())
            )

    async def block_conversation(self, conversation_id: int, reason: str) -> None:
        """The person cannot be reached: send nothing more until they write again."""
        await self.writer(functools.partial(events.block, conversation_id=conversation_id, reason=reason))

    async def apply(self, channel: str, received: Received) -> None:
        """Events noticed outside a webhook (a send that found the chat moved)."""
        await self.receive(channel, received)

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

    async def transcript(
        self, conversation_id: int, since: datetime | None, limit: int
    ) -> list[StoredMessage | StoredPart]:
        """What the person wrote and what was sent to them, oldest first: at most ``limit`` items
        after ``since`` (the web channel's history, a page at a time). A message shows once it is
        answered, as in OCS (a widget that polls while it sends would otherwise show it twice)."""
        m, p = MessageRow, PartRow
        written = select(m).where(
            m.conversation_id == conversation_id, m.kind.in_(_WRITTEN), m.status != "pending"
        )
        sent = select(p).where(p.conversation_id == conversation_id, p.status == "sent")
        if since is not None:
            written = written.where(m.received_at > since)
            sent = sent.where(p.created_at > since)
        async with self.reading() as session:
            said = await session.scalars(written.order_by(m.received_at, m.id).limit(limit))
            messages: list[StoredMessage | StoredPart] = [to_message(r) for r in said]
            parts = [
                to_part(r) for r in await session.scalars(sent.order_by(p.created_at, p.id).limit(limit))
            ]
        both = sorted(
            [*messages, *parts], key=lambda i: i.received_at if isinstance(i, StoredMessage) else i.created_at
        )
        return both[:limit]

    async def ended(self, conversation_id: int) -> bool:
        """Whether the conversation was ended for good (the widget's "new chat" left it)."""
        query = select(MessageRow.id).where(
            MessageRow.conversation_id == conversation_id, MessageRow.kind == Kind.END.value
        )
        async with self.reading() as session:
            return await session.scalar(query.limit(1)) is not None

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

    async def backlog(self) -> Backlog:
        """What waits and what failed, in one round trip (the partial ``ix_*_open`` indexes)."""

        def count(table: type[MessageRow | PartRow], status: str) -> Any:
            return select(func.count()).where(table.status == status).scalar_subquery()

        def oldest(column: Any, status: Any) -> Any:
            return select(func.min(column)).where(status == "pending").scalar_subquery()

        query = select(
            count(MessageRow, "pending") + count(PartRow, "pending"),
            count(MessageRow, "dead") + count(PartRow, "dead"),
            oldest(MessageRow.received_at, MessageRow.status),
            oldest(PartRow.created_at, PartRow.status),
        )
        async with self.reading() as session:
            depth, dead, *pending = (await session.execute(query)).one()
        since = [at for at in pending if at is not None]
        return Backlog(int(depth or 0), int(dead or 0), min(since) if since else None)

    async def beat(self, owner: str) -> None:
        """A worker process says it is alive (its heartbeat loop calls this every few seconds)."""
        now = utcnow()
        insert = (postgresql if self.is_postgres else sqlite).insert(HeartbeatRow)
        async with self.writing() as session:
            await session.execute(
                insert.values(owner=owner, seen_at=now).on_conflict_do_update(
                    index_elements=["owner"], set_={"seen_at": now}
                )
            )
            # processes that stopped long ago (each start is a new owner)
            await session.execute(delete(HeartbeatRow).where(HeartbeatRow.seen_at < now - _FORGET))

    async def live_workers(self, within: float) -> int:
        """How many worker processes, anywhere, beat in the last ``within`` seconds."""
        since = utcnow() - timedelta(seconds=within)
        async with self.reading() as session:
            return int(await session.scalar(select(func.count()).where(HeartbeatRow.seen_at >= since)) or 0)

    async def ping(self) -> None:
        async with self.reading() as session:
            await session.execute(select(1))
