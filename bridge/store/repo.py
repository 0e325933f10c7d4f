"""The store as channels, the web API and the CLI see it: conversations, messages, reply parts.

Every write is a Writer operation (``bridge.store.writer``: group commit), a plain function on a
connection kept in the module of its topic (``events``, ``handoff``, ``follow``, ``people``,
``letters``, ``session_tokens``, ``heartbeats``, ``statements``); the methods here hand them to
the writer. Reads use ``reading()``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bridge.model import Conversation, InboundMessage, Kind, Person, Received
from bridge.store import (
    admin,
    events,
    follow,
    handoff,
    heartbeats,
    letters,
    people,
    session_tokens,
    statements,
)
from bridge.store.db import sessionmaker, sqlite_writer_engine
from bridge.store.inbound import Inbound
from bridge.store.records import (
    CONVERSATION,
    MESSAGE,
    PART,
    Accepted,
    Backlog,
    DeadLetter,
    Schedule,
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

if TYPE_CHECKING:
    from bridge.store.people import ScheduleChange

T = TypeVar("T")
C = ConversationRow.__table__.c
M = MessageRow.__table__.c
P = PartRow.__table__.c
# What a person wrote (not the bridge's own proactive work, nor the widget's "new chat")
_WRITTEN = [k.value for k in Kind if k not in (Kind.END, Kind.PROMPT, Kind.DELIVER)]
_FORGET = timedelta(days=1)  # heartbeats older than this are deleted


class Store:
    """Conversations, inbound messages and reply parts (see ``bridge.store.queue`` for the worker side)."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"
        if engine.dialect.name == "sqlite":
            # SQLite has one writer at a time (the Writer's thread); readers run beside it (WAL)
            # in plain deferred transactions.
            self._reader = sessionmaker(engine.execution_options(readonly=True))
            self.writer = Writer(engine, sqlite_writer_engine(engine))
        else:
            self._reader = sessionmaker(engine)
            self.writer = Writer(engine, None)
        self.inbound = Inbound(self.is_postgres)

    async def close(self) -> None:
        """Finish the writes under way (the engine is the caller's to dispose of)."""
        await self.writer.close()

    def reading(self) -> AsyncSession:
        """A session for reads only (every write is a Writer operation)."""
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
        found = await self._conversations((C.channel == channel) & (C.person_key == clean_text(key)))
        return found[0] if found else None

    async def conversations_at(self, channel: str, address: str) -> list[Conversation]:
        """Every conversation of a channel that replies to ``address`` (one chat, several people)."""
        return await self._conversations((C.channel == channel) & (C.address == address))

    async def conversations_with(self, channel: str, field: str, value: str) -> list[Conversation]:
        """Conversations of a channel whose state has ``field == value`` (oldest first)."""
        state = ConversationRow.state[field].as_string()
        return await self._conversations((C.channel == channel) & (state == clean_text(value)))

    async def _conversations(self, where: Any) -> list[Conversation]:
        async with self.reading() as session:
            rows = await session.execute(select(*CONVERSATION).where(where).order_by(C.id))
            return [to_conversation(row._mapping) for row in rows]

    async def open_conversation(
        self, channel: str, person: Person, state: dict[str, Any] | None = None
    ) -> Conversation:
        """Get or create the conversation; ``state`` (if given) is merged into its stored state."""
        person = clean_person(person)

        def open_conversation(connection: Connection) -> Conversation:
            conversation_id = self.inbound.upsert_conversation(
                connection, channel, person, work=False, state=clean_json(state) if state else None
            )
            row = connection.execute(select(*CONVERSATION).where(C.id == conversation_id)).one()
            return to_conversation(row._mapping)

        return await self.writer(open_conversation)

    async def set_session(self, conversation_id: int, session_id: str | None) -> None:
        await self._write(statements.set_session, conversation_id=conversation_id, session_id=session_id)

    async def _write(self, operation: Callable[..., T], /, **arguments: Any) -> T:
        """Run the Writer operation ``operation(connection, **arguments)``; its result."""
        return await self.writer(functools.partial(operation, **arguments))

    async def block_conversation(self, conversation_id: int, reason: str) -> None:
        """The person cannot be reached (``bridge.store.events``): nothing more until they write again."""
        await self._write(events.block, conversation_id=conversation_id, reason=reason)

    # what bots tell (``bridge.store.handoff``) --------------------------------------------------
    async def mark_sessions(
        self, channels: Collection[str], *, handed_off: Collection[str], closed: Collection[str]
    ) -> list[int]:
        return await self._write(
            handoff.mark_sessions, channels=channels, handed_off=handed_off, closed=closed
        )

    async def forget_session(self, conversation_id: int, session_id: str) -> None:
        await self._write(handoff.forget_session, conversation_id=conversation_id, session_id=session_id)

    # the follower (``bridge.store.follow``) -----------------------------------------------------
    async def claim_read(
        self, conversation_id: int, active: Collection[str], since: datetime, until: datetime
    ) -> follow.Claim | None:
        return await self._write(
            follow.claim_read, conversation_id=conversation_id, active=active, since=since, until=until
        )

    async def advance(self, conversation_id: int, session_id: str, position: str | None) -> None:
        await self._write(
            follow.advance, conversation_id=conversation_id, session_id=session_id, position=position
        )

    # people (``bridge.store.people``) -----------------------------------------------------------
    async def merge_data(self, conversation_id: int, data: dict[str, Any]) -> dict[str, Any]:
        return await self._write(people.merge_data, conversation_id=conversation_id, data=data)

    async def save_schedules(self, conversation_id: int, changes: Sequence[ScheduleChange]) -> None:
        await self._write(people.save_schedules, conversation_id=conversation_id, changes=changes)

    async def mark_fired(self, schedule: Schedule) -> None:
        await self._write(people.mark_fired, schedule=schedule)

    # the operator (``bridge.store.admin``) ------------------------------------------------------
    async def erase(self, conversation_id: int) -> admin.Erased | None:
        return await self._write(admin.erase, conversation_id=conversation_id)

    async def expire_texts(
        self, before: datetime, cursor: admin.RetentionCursor, batch: int = admin.RETENTION_BATCH
    ) -> tuple[admin.RetentionCursor, int]:
        return await self._write(admin.expire, before=before, cursor=cursor, batch=batch)

    async def expire_tokens(self, before: datetime) -> int:
        return await self._write(admin.expire_tokens, before=before)

    # the OCS Chat API's session tokens (``bridge.store.session_tokens``) --------------------------
    async def keep_token(self, session_id: str, token: str, started_at: datetime) -> None:
        await self._write(session_tokens.keep, session_id=session_id, token=token, started_at=started_at)

    async def session_token(self, session_id: str) -> tuple[str, datetime] | None:
        """A session's token and when the session started; None if none is kept."""
        async with self.reading() as session:
            found = (await session.execute(session_tokens.SESSION_TOKEN, {"session_id": session_id})).first()
        return None if found is None else (found.token, found.started_at)

    async def forget_token(self, session_id: str) -> None:
        await self._write(session_tokens.forget, session_id=session_id)

    # dead letters (``bridge.store.letters``) ----------------------------------------------------
    async def dead_letters(self) -> list[DeadLetter]:
        async with self.reading() as session:
            return letters.letters(await session.execute(letters.DEAD))

    async def revive(self, ref: str) -> letters.Revived:
        return await self._write(letters.revive, ref=ref)

    # reading back (web channel, CLI) ------------------------------------------------------------
    async def message(self, public_id: str) -> StoredMessage | None:
        async with self.reading() as session:
            query = select(MessageRow.__table__).where(M.public_id == clean_text(public_id))
            row = (await session.execute(query)).first()
            return None if row is None else to_message(row._mapping)

    async def parts_of(self, message_id: int) -> list[StoredPart]:
        return await self._parts(P.message_id == message_id)

    async def transcript(
        self, conversation_id: int, since: datetime | None, limit: int, asked: datetime
    ) -> list[StoredMessage | StoredPart]:
        """What the person wrote and what was sent to them, oldest first: at most ``limit`` items
        after ``since`` (the web channel's history, a page at a time), as it stood when the widget
        ``asked``. A message shows once it is answered, as in OCS, and an answer once it was sent:
        the widget shows what a poll returns and, besides, what it sends and its task's answer, so
        a poll asked before those were done must not return them (it would show them twice)."""
        written = select(*MESSAGE).where(
            M.conversation_id == conversation_id,
            M.kind.in_(_WRITTEN),
            M.status != "pending",
            or_(M.done_at.is_(None), M.done_at <= asked),
        )
        sent = select(*PART).where(
            P.conversation_id == conversation_id,
            P.status == "sent",
            or_(P.sent_at.is_(None), P.sent_at <= asked),
        )
        if since is not None:
            written = written.where(M.received_at > since)
            sent = sent.where(P.created_at > since)
        async with self.reading() as session:
            said = await session.execute(written.order_by(M.received_at, M.id).limit(limit))
            messages: list[StoredMessage | StoredPart] = [to_message(r._mapping) for r in said]
            answers = await session.execute(sent.order_by(P.created_at, P.id).limit(limit))
            parts = [to_part(r._mapping) for r in answers]
        both = sorted(
            [*messages, *parts], key=lambda i: i.received_at if isinstance(i, StoredMessage) else i.created_at
        )
        return both[:limit]

    async def ended(self, conversation_id: int) -> str | None:
        """How the conversation's session ended: ``"left"`` (the widget's "new chat" left it for
        another), ``"closed"`` (the bot's side closed it, and no message has opened another since),
        or None while it is active."""
        left = select(M.id).where(M.conversation_id == conversation_id, M.kind == Kind.END.value).limit(1)
        closed = select(C.id).where(
            C.id == conversation_id,
            C.closed_session.is_not(None),
            or_(C.session_id.is_(None), C.session_id == C.closed_session),
        )
        async with self.reading() as session:
            if await session.scalar(left) is not None:
                return "left"
            return "closed" if await session.scalar(closed) is not None else None

    async def _parts(self, where: Any) -> list[StoredPart]:
        async with self.reading() as session:
            rows = await session.execute(select(*PART).where(where).order_by(P.id))
            return [to_part(row._mapping) for row in rows]

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
        insert = (postgresql if self.is_postgres else sqlite).insert(HeartbeatRow)

        def beat(connection: Connection) -> None:
            now = utcnow()
            connection.execute(
                insert.values(owner=owner, seen_at=now).on_conflict_do_update(
                    index_elements=["owner"], set_={"seen_at": now}
                )
            )
            # processes that stopped long ago (each start is a new owner)
            connection.execute(delete(HeartbeatRow).where(HeartbeatRow.seen_at < now - _FORGET))

        await self.writer(beat)

    async def forget_worker(self, owner: str) -> None:
        """A worker stopped, or its loop died: ``/readyz`` elsewhere stops counting it at once."""
        await self._write(heartbeats.forget, owner=owner)

    async def live_workers(self, within: float) -> int:
        """How many worker processes, anywhere, beat in the last ``within`` seconds."""
        since = utcnow() - timedelta(seconds=within)
        async with self.reading() as session:
            return int(await session.scalar(select(func.count()).where(HeartbeatRow.seen_at >= since)) or 0)

    async def ping(self) -> None:
        async with self.reading() as session:
            await session.execute(select(1))
