"""The durable job queue, as the workers see it.

A conversation with work has ``next_run_at`` set. A worker claims it by taking a lease
(``lease_owner``, ``lease_until``), keeps what the claim read in memory while it holds the lease,
and renews all its leases in one statement; a crashed worker's leases simply run out and another
worker claims the conversations. Only one worker holds a conversation, so its messages are
handled one at a time, in arrival order; different conversations run in parallel. ``inbox_seq`` is
bumped by every new piece of work, so a worker only lets go of a conversation it has seen empty
(no message slips in between the check and the release).

Before a message is handed to the bot its ``relayed_at`` is set durably (by the claim for the first
message, by the previous message's outcome for the next): a later attempt then asks the bot's
history first, so a turn the bot already took is never sent twice. Every write goes through the
store's ``Writer`` (shared commits); the hot paths are SQLAlchemy Core statements.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from bridge.model import Attachment, Conversation
from bridge.store.handoff import mark_handed_off
from bridge.store.records import (
    CONVERSATION,
    MESSAGE,
    PART,
    StoredMessage,
    StoredPart,
    attachments_json,
    to_conversation,
    to_message,
    to_part,
)
from bridge.store.repo import Store
from bridge.store.tables import ConversationRow, MessageRow, PartRow, UTCDateTime, utcnow

C = ConversationRow.__table__.c
M = MessageRow.__table__.c
P = PartRow.__table__.c
_CONVERSATION = [
    *CONVERSATION,
    C.blocked,
    C.inbox_seq,
    C.last_activity_at,
    C.handoff_session,
    C.closed_session,
]
_NOW = UTCDateTime()


def _now_param(name: str = "q_now") -> Any:
    return bindparam(name, type_=_NOW)


# Hot statements, built once (bound parameters): SQLAlchemy then skips building and keying them.
_HELD = (C.id == bindparam("q_id")) & (C.lease_owner == bindparam("q_owner"))
_RELEASE = (
    update(ConversationRow)
    .where(_HELD)
    .values(next_run_at=_now_param("q_run_at"), lease_owner=None, lease_until=None)
)
_RELEASE_IF_SEEN = _RELEASE.where(C.inbox_seq == bindparam("q_seq"))
_TOUCH = update(ConversationRow).where(_HELD).values(last_activity_at=_now_param())
_RENEW = (
    update(ConversationRow)
    .where(C.lease_owner == bindparam("q_owner"))
    .values(lease_until=_now_param("q_until"))
)
_HELD_ROW = select(*_CONVERSATION).where(_HELD)
_PENDING_MESSAGES = (
    select(*MESSAGE)
    .where(M.conversation_id.in_(bindparam("q_ids", expanding=True)), M.status == "pending")
    .order_by(M.id)
)
_PENDING_PARTS = (
    select(*PART, M.public_id)
    .outerjoin(MessageRow, M.id == P.message_id)
    .where(P.conversation_id.in_(bindparam("q_ids", expanding=True)), P.status == "pending")
    .order_by(P.id)
)
_MARK_RELAYED = (
    update(MessageRow)
    .where(M.id.in_(bindparam("q_ids", expanding=True)), M.relayed_at.is_(None))
    .values(relayed_at=_now_param())
)
_INSERT_PARTS = insert(PartRow).returning(P.id, sort_by_parameter_order=True)
_CLOSE_MESSAGE = (
    update(MessageRow)
    .where(M.id == bindparam("q_id"))
    .values(status=bindparam("q_status"), error=bindparam("q_error"), done_at=_now_param())
)
_PART_SENT = (
    update(PartRow)
    .where(P.id == bindparam("q_part"))
    .values(status="sent", platform_message_id=bindparam("q_platform_id"), sent_at=_now_param())
)


@dataclass(slots=True)
class Claim:
    """A claimed conversation and its pending work, as read when it was claimed (or reloaded)."""

    conversation: Conversation
    seq: int
    blocked: bool
    last_activity_at: datetime
    handoff_session: str | None  # the session a human agent has
    closed_session: str | None  # the session the bot's side closed
    parts: list[StoredPart] = field(default_factory=list)  # reply parts waiting to go out, in order
    messages: list[StoredMessage] = field(default_factory=list)  # waiting for the bot, in order


class Queue:
    def __init__(self, store: Store, owner: str, lease_seconds: float):
        self.store = store
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        due = (
            select(C.id)
            .where(C.next_run_at <= _now_param(), or_(C.lease_until.is_(None), C.lease_until < _now_param()))
            .order_by(C.next_run_at)
            .limit(bindparam("q_limit"))
        )
        if store.is_postgres:
            due = due.with_for_update(skip_locked=True)
        self._claim_statement = (
            update(ConversationRow)
            .where(C.id.in_(due.scalar_subquery()))
            .values(lease_owner=bindparam("q_owner"), lease_until=_now_param("q_until"))
            .returning(*_CONVERSATION)
        )

    # leases -------------------------------------------------------------------------------------
    async def claim(self, limit: int) -> list[Claim]:
        """Lease up to ``limit`` conversations that have work due and no live lease, with their work."""
        return await self.store.writer(functools.partial(self._claim, limit))

    def _claim(self, limit: int, connection: Connection) -> list[Claim]:
        now = utcnow()
        values = {"q_now": now, "q_limit": limit, "q_owner": self.owner, "q_until": now + self.lease}
        rows = connection.execute(self._claim_statement, values)
        return _with_work(connection, list(rows), now)

    async def reload(self, conversation_id: int) -> Claim | None:
        """Read a held conversation and its work again (new work arrived); None if the lease is lost."""
        return await self.store.writer(functools.partial(self._reload, conversation_id))

    def _reload(self, conversation_id: int, connection: Connection) -> Claim | None:
        rows = list(connection.execute(_HELD_ROW, {"q_id": conversation_id, "q_owner": self.owner}))
        claims = _with_work(connection, rows, utcnow())
        return claims[0] if claims else None

    async def renew(self) -> None:
        """Keep every lease of this worker alive (one statement, however many it holds), in the
        very next transaction: ahead of every write queued (see ``Writer``)."""

        def renew(connection: Connection) -> None:
            connection.execute(_RENEW, {"q_owner": self.owner, "q_until": utcnow() + self.lease})

        await self.store.writer(renew, lease=True)

    async def release(
        self, conversation_id: int, *, seq: int | None = None, run_at: datetime | None = None
    ) -> bool:
        """Let go of a conversation. With ``seq``: only if no work arrived since (else False)."""
        return await self.store.writer(functools.partial(self._release, conversation_id, seq, run_at))

    def _release(
        self, conversation_id: int, seq: int | None, run_at: datetime | None, connection: Connection
    ) -> bool:
        values = {"q_id": conversation_id, "q_owner": self.owner, "q_run_at": run_at, "q_seq": seq}
        result = connection.execute(_RELEASE if seq is None else _RELEASE_IF_SEEN, values)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # outcomes -----------------------------------------------------------------------------------
    async def complete(
        self,
        message: StoredMessage,
        parts: list[tuple[str, tuple[Attachment, ...]]],
        *,
        dead_reason: str | None = None,
        next_message: StoredMessage | None = None,
        handed_off: str | None = None,
    ) -> list[StoredPart] | None:
        """Store the reply parts and close the message, in one transaction, if we still hold the
        lease; the stored parts (to send now), or None if the lease was lost. ``next_message`` is
        the one to be handed to the bot next: noted as relayed in the same transaction;
        ``handed_off`` is a session the bot said is with a human agent now."""

        def complete(connection: Connection) -> list[StoredPart] | None:
            now = utcnow()
            if not self._touch(connection, message.conversation_id, now):
                return None
            stored = _insert_parts(connection, message.conversation_id, message.id, parts, now)
            status = "dead" if dead_reason else "done"
            values = {"q_id": message.id, "q_status": status, "q_error": dead_reason, "q_now": now}
            connection.execute(_CLOSE_MESSAGE, values)
            if next_message is not None:
                _mark_relayed(connection, [next_message.id], now)
            if handed_off is not None:
                mark_handed_off(connection, message.conversation_id, handed_off)
            return [to_part(part, message.public_id) for part in stored]

        return await self.store.writer(complete)

    async def retry_message(self, message: StoredMessage, at: datetime, reason: str) -> None:
        """The bot failed in a way that is safe to retry: try again at ``at`` (the conversation is
        let go until then, holding nothing)."""

        def retry(connection: Connection) -> None:
            self._retry(connection, MessageRow, message.id, message.conversation_id, at, reason)

        await self.store.writer(retry)

    async def part_sent(
        self, part: StoredPart, platform_id: str | None, *, release_seq: int | None = None
    ) -> bool:
        """Note a part as sent; with ``release_seq``, also let go of the conversation if nothing
        arrived since (the result of that release)."""

        def sent(connection: Connection) -> bool:
            values = {"q_part": part.id, "q_platform_id": platform_id, "q_now": utcnow()}
            connection.execute(_PART_SENT, values)
            if release_seq is None:
                return False
            return self._release(part.conversation_id, release_seq, None, connection)

        return await self.store.writer(sent)

    async def part_retry(self, part: StoredPart, at: datetime, reason: str) -> None:
        """Sending failed, safe to retry at ``at``: the conversation is let go until then."""

        def retry(connection: Connection) -> None:
            self._retry(connection, PartRow, part.id, part.conversation_id, at, reason)

        await self.store.writer(retry)

    async def part_dead(self, part: StoredPart, reason: str) -> None:
        def dead(connection: Connection) -> None:
            connection.execute(
                update(PartRow)
                .where(P.id == part.id)
                .values(status="dead", attempts=part.attempts + 1, error=reason)
            )

        await self.store.writer(dead)

    def _retry(
        self,
        connection: Connection,
        table: type[MessageRow] | type[PartRow],
        row_id: int,
        conversation_id: int,
        at: datetime,
        reason: str,
    ) -> None:
        """One more attempt of a message or part at ``at``; the conversation is let go until then."""
        connection.execute(
            update(table)
            .where(table.id == row_id)
            .values(attempts=table.attempts + 1, next_attempt_at=at, error=reason)
        )
        self._release(conversation_id, None, at, connection)

    def _touch(self, connection: Connection, conversation_id: int, now: datetime) -> bool:
        """Note activity, if this worker still holds the conversation."""
        values = {"q_id": conversation_id, "q_owner": self.owner, "q_now": now}
        result = connection.execute(_TOUCH, values)
        return bool(result.rowcount)  # type: ignore[attr-defined]


# reading work -----------------------------------------------------------------------------------
def _with_work(connection: Connection, rows: list[Any], now: datetime) -> list[Claim]:
    """Claims for the conversation rows, with their pending messages and parts (two queries for all);
    the first message of each is noted as relayed (it goes to the bot next)."""
    if not rows:
        return []
    claims = {row.id: _claim_record(row) for row in rows}
    ids = {"q_ids": list(claims)}
    for row in connection.execute(_PENDING_MESSAGES, ids):
        claims[row.conversation_id].messages.append(to_message(row._mapping))
    for row in connection.execute(_PENDING_PARTS, ids):
        claims[row.conversation_id].parts.append(to_part(row._mapping, row.public_id))
    _mark_relayed(connection, [c.messages[0].id for c in claims.values() if c.messages], now)
    return list(claims.values())


def _mark_relayed(connection: Connection, message_ids: list[int], now: datetime) -> None:
    if message_ids:
        connection.execute(_MARK_RELAYED, {"q_ids": message_ids, "q_now": now})


def _insert_parts(
    connection: Connection,
    conversation_id: int,
    message_id: int | None,
    parts: list[tuple[str, tuple[Attachment, ...]]],
    now: datetime,
) -> list[dict[str, Any]]:
    rows = [
        {
            "conversation_id": conversation_id,
            "message_id": message_id,
            "seq": i,
            "text": text,
            "attachments": attachments_json(attachments),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "error": None,
            "created_at": now,
            "delivery_status": None,
        }
        for i, (text, attachments) in enumerate(parts)
    ]
    if rows:
        ids = connection.scalars(_INSERT_PARTS, rows)
        for row, part_id in zip(rows, ids, strict=True):
            row["id"] = part_id
    return rows


def _claim_record(row: Any) -> Claim:
    conversation = to_conversation(row._mapping)
    values = (row.inbox_seq, row.blocked, row.last_activity_at, row.handoff_session, row.closed_session)
    return Claim(conversation, *values)
