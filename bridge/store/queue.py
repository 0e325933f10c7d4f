"""The durable job queue, as the workers see it.

A conversation with work has ``next_run_at`` set. A worker claims it by taking a lease
(``lease_owner``, ``lease_until``) and renews the lease while it works; a crashed worker's lease
simply runs out and another worker claims the conversation. Only one worker holds a conversation,
so its messages are handled one at a time, in arrival order; different conversations run in
parallel. ``inbox_seq`` is bumped by every new piece of work, so a worker only lets go of a
conversation it has seen empty (no message slips in between the check and the release).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bridge.model import Attachment, Conversation
from bridge.store.records import (
    DeadLetter,
    StoredMessage,
    StoredPart,
    attachments_json,
    to_conversation,
    to_message,
    to_part,
)
from bridge.store.repo import Store
from bridge.store.tables import ConversationRow, MessageRow, PartRow, utcnow

Row = TypeVar("Row", MessageRow, PartRow)


@dataclass(frozen=True, slots=True)
class Work:
    """A claimed conversation as the worker last read it."""

    conversation: Conversation
    seq: int
    blocked: bool
    last_activity_at: datetime
    part: StoredPart | None  # the oldest reply part waiting to go out
    message: StoredMessage | None  # the oldest message waiting for the bot
    more_messages: bool  # others wait behind ``message``


class Queue:
    def __init__(self, store: Store, owner: str, lease_seconds: float):
        self.store = store
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)

    # leases -------------------------------------------------------------------------------------
    async def claim(self, limit: int) -> list[int]:
        """Lease up to ``limit`` conversations that have work due and no live lease."""
        now = utcnow()
        c = ConversationRow
        query = (
            select(c.id)
            .where(c.next_run_at <= now, or_(c.lease_until.is_(None), c.lease_until < now))
            .order_by(c.next_run_at)
            .limit(limit)
        )
        if self.store.is_postgres:
            query = query.with_for_update(skip_locked=True)
        async with self.store.writing() as session:
            ids = list(await session.scalars(query))
            if ids:
                await session.execute(
                    update(c)
                    .where(c.id.in_(ids))
                    .values(lease_owner=self.owner, lease_until=now + self.lease)
                )
            return ids

    async def renew(self, ids: list[int]) -> None:
        if not ids:
            return
        c = ConversationRow
        async with self.store.writing() as session:
            await session.execute(
                update(c)
                .where(c.id.in_(ids), c.lease_owner == self.owner)
                .values(lease_until=utcnow() + self.lease)
            )

    async def release(
        self, conversation_id: int, *, seq: int | None = None, run_at: datetime | None = None
    ) -> bool:
        """Let go of a conversation. With ``seq``: only if no work arrived since (else False)."""
        c = ConversationRow
        query = update(c).where(c.id == conversation_id, c.lease_owner == self.owner)
        if seq is not None:
            query = query.where(c.inbox_seq == seq)
        async with self.store.writing() as session:
            result = await session.execute(
                query.values(next_run_at=run_at, lease_owner=None, lease_until=None)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def work(self, conversation_id: int) -> Work | None:
        """The conversation and what it has to do next, or None if this worker no longer holds it."""
        async with self.store.reading() as session:
            row = await session.get(ConversationRow, conversation_id)
            if row is None or row.lease_owner != self.owner:
                return None
            parts = await _oldest_pending(session, PartRow, conversation_id, 1)
            part = parts[0] if parts else None
            messages = await _oldest_pending(session, MessageRow, conversation_id, 2)
            part_of: str | None = None
            if part is not None and part.message_id is not None:
                part_of = await session.scalar(
                    select(MessageRow.public_id).where(MessageRow.id == part.message_id)
                )
            return Work(
                to_conversation(row),
                row.inbox_seq,
                row.blocked,
                row.last_activity_at,
                None if part is None else to_part(part, part_of),
                to_message(messages[0]) if messages else None,
                len(messages) > 1,
            )

    # outcomes -----------------------------------------------------------------------------------
    async def complete(
        self,
        message: StoredMessage,
        parts: list[tuple[str, tuple[Attachment, ...]]],
        *,
        dead_reason: str | None = None,
    ) -> list[StoredPart] | None:
        """Store the reply parts and close the message, in one transaction, if we still hold the
        lease; the stored parts (to send now), or None if the lease was lost."""
        now = utcnow()
        async with self.store.writing() as session:
            if not await self._still_ours(session, message.conversation_id, now):
                return None
            rows = [
                PartRow(
                    conversation_id=message.conversation_id,
                    message_id=message.id,
                    seq=i,
                    text=text,
                    attachments=attachments_json(attachments),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                for i, (text, attachments) in enumerate(parts)
            ]
            session.add_all(rows)
            await session.execute(
                update(MessageRow)
                .where(MessageRow.id == message.id)
                .values(status="dead" if dead_reason else "done", error=dead_reason, done_at=now)
            )
            await session.flush()
            return [to_part(row, message.public_id) for row in rows]

    async def mark_relayed(self, message: StoredMessage) -> None:
        """Durably note that the message is being handed to the bot (a later attempt checks the
        bot's history first, so a turn the bot already took is not sent twice)."""
        async with self.store.writing() as session:
            await session.execute(
                update(MessageRow).where(MessageRow.id == message.id).values(relayed_at=utcnow())
            )

    async def retry_message(self, message: StoredMessage, at: datetime, reason: str) -> None:
        async with self.store.writing() as session:
            await session.execute(
                update(MessageRow)
                .where(MessageRow.id == message.id)
                .values(attempts=MessageRow.attempts + 1, next_attempt_at=at, error=reason)
            )

    async def part_sent(self, part: StoredPart, platform_message_id: str | None) -> None:
        await self._part(part, status="sent", platform_message_id=platform_message_id, sent_at=utcnow())

    async def part_retry(self, part: StoredPart, at: datetime, reason: str) -> None:
        await self._part(part, attempts=part.attempts + 1, next_attempt_at=at, error=reason)

    async def part_dead(self, part: StoredPart, reason: str) -> None:
        await self._part(part, status="dead", attempts=part.attempts + 1, error=reason)

    async def _part(self, part: StoredPart, **values: object) -> None:
        async with self.store.writing() as session:
            await session.execute(update(PartRow).where(PartRow.id == part.id).values(**values))

    async def _still_ours(self, session: AsyncSession, conversation_id: int, now: datetime) -> bool:
        result = await session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == conversation_id, ConversationRow.lease_owner == self.owner)
            .values(last_activity_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def _oldest_pending(
    session: AsyncSession, table: type[Row], conversation_id: int, limit: int
) -> list[Row]:
    rows = await session.scalars(
        select(table)
        .where(table.conversation_id == conversation_id, table.status == "pending")
        .order_by(table.id)
        .limit(limit)
    )
    return list(rows)


async def dead_letters(store: Store) -> list[DeadLetter]:
    c = ConversationRow
    async with store.reading() as session:
        messages = await session.execute(
            select(MessageRow.id, c.channel, c.person_key, MessageRow.received_at, MessageRow.error)
            .join(c, c.id == MessageRow.conversation_id)
            .where(MessageRow.status == "dead")
        )
        parts = await session.execute(
            select(PartRow.id, c.channel, c.person_key, PartRow.created_at, PartRow.error)
            .join(c, c.id == PartRow.conversation_id)
            .where(PartRow.status == "dead")
        )
        letters = [DeadLetter(f"in-{i}", ch, key, at, err or "") for i, ch, key, at, err in messages]
        letters += [DeadLetter(f"out-{i}", ch, key, at, err or "") for i, ch, key, at, err in parts]
    return sorted(letters, key=lambda d: d.at)


async def revive(store: Store, ref: str) -> bool:
    """Queue a dead letter again (``in-N`` or ``out-N``); False if there is no such dead letter."""
    kind, _, number = ref.partition("-")
    if kind not in ("in", "out") or not number.isdigit():
        return False
    table = MessageRow if kind == "in" else PartRow
    now = utcnow()
    values: dict[str, object] = {"status": "pending", "attempts": 0, "next_attempt_at": now, "error": None}
    if table is MessageRow:
        values["relayed_at"] = None  # the operator asks for a fresh attempt, not the failed answer
    async with store.writing() as session:
        conversation_id = await session.scalar(
            update(table)
            .where(table.id == int(number), table.status == "dead")
            .values(**values)
            .returning(table.conversation_id)
        )
        if conversation_id is None:
            return False
        c = ConversationRow
        await session.execute(
            update(c)
            .where(c.id == conversation_id)
            .values(inbox_seq=c.inbox_seq + 1, next_run_at=func.coalesce(c.next_run_at, now), blocked=False)
        )
        return True
