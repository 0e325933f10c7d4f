"""The people the bridge serves, as the proactive API sees them: their data per chatbot, their
schedules, whether they can be reached, and proactive messages already stored. The writes are
Writer operations (``Store.merge_data``, ``Store.save_schedules``, ``Store.mark_fired``)."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from bridge.model import Conversation
from bridge.store.db import Reader
from bridge.store.proactive_tables import ParticipantDataRow, ScheduleRow
from bridge.store.records import CONVERSATION, Schedule, to_conversation, to_schedule
from bridge.store.tables import ConversationRow, MessageRow, utcnow


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    """One entry of a participants update: a new schedule (no ``id``), a change, or a removal."""

    id: str | None
    name: str | None = None
    prompt: str | None = None
    due_at: datetime | None = None
    delete: bool = False


@dataclass(frozen=True, slots=True)
class Participant:
    conversation: Conversation
    data: dict[str, Any]
    schedules: list[Schedule] = field(default_factory=list)


class UnknownSchedule(LookupError):
    """A schedule ``id`` that is not one of this person's."""


async def is_blocked(store: Reader, conversation_id: int) -> bool:
    async with store.reading() as session:
        blocked = await session.scalar(
            select(ConversationRow.blocked).where(ConversationRow.id == conversation_id)
        )
        return bool(blocked)


async def stored(store: Reader, channel: str, platform_id: str) -> bool:
    """Whether a message with this id is already stored (a retried trigger)."""
    async with store.reading() as session:
        found = await session.scalar(
            select(MessageRow.id).where(MessageRow.channel == channel, MessageRow.platform_id == platform_id)
        )
        return found is not None


async def data_of(store: Reader, conversation_id: int) -> dict[str, Any] | None:
    """The person's data (None if they have none)."""
    async with store.reading() as session:
        row = await session.get(ParticipantDataRow, conversation_id)
        return dict(row.data) if row is not None and row.data else None


def merge_data(connection: Connection, conversation_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Merge ``data`` into the person's data (top-level keys replaced); the merged data."""
    d = ParticipantDataRow.__table__.c
    stored = connection.scalar(select(d.data).where(d.conversation_id == conversation_id))
    now = utcnow()
    if stored is None:
        merged = dict(data)
        connection.execute(
            insert(ParticipantDataRow).values(conversation_id=conversation_id, data=merged, updated_at=now)
        )
    else:
        merged = {**stored, **data}
        connection.execute(
            update(ParticipantDataRow)
            .where(d.conversation_id == conversation_id)
            .values(data=merged, updated_at=now)
        )
    return dict(merged)


def save_schedules(connection: Connection, conversation_id: int, changes: Sequence[ScheduleChange]) -> None:
    """Create, move or remove schedules, all or none. An unknown id is created with that id (as OCS
    does); ``UnknownSchedule`` for another person's id, or an unknown one without prompt and date
    (before anything is written)."""
    s = ScheduleRow.__table__.c
    named = [change.id for change in changes if change.id is not None]
    stored = {
        row.id: row
        for row in connection.execute(select(s.id, s.conversation_id, s.due_at).where(s.id.in_(named)))
    }
    for change in changes:
        row = stored.get(change.id) if change.id is not None else None
        if change.id is not None and row is None and not _creates(change):
            raise UnknownSchedule(change.id)
        if row is not None and row.conversation_id != conversation_id:
            raise UnknownSchedule(str(change.id))
    for change in changes:
        if change.id is None or change.id not in stored:  # new (OCS upserts by id)
            assert change.due_at is not None
            row_id = change.id or secrets.token_hex(8)
            values = {"id": row_id, "conversation_id": conversation_id, "due_at": change.due_at}
            values |= {"name": change.name or "", "prompt": change.prompt or "", "created_at": utcnow()}
            connection.execute(insert(ScheduleRow).values(values))
        elif change.delete:
            connection.execute(delete(ScheduleRow).where(s.id == change.id))
        else:
            changed: dict[str, Any] = {}
            if change.name is not None:
                changed["name"] = change.name
            if change.prompt is not None:
                changed["prompt"] = change.prompt
            if change.due_at is not None and change.due_at != stored[change.id].due_at:
                changed |= {"due_at": change.due_at, "fired_at": None}  # moved: it fires (again) then
            if changed:
                connection.execute(update(ScheduleRow).where(s.id == change.id).values(changed))


def _creates(change: ScheduleChange) -> bool:
    return not change.delete and bool(change.prompt) and change.due_at is not None


async def due_schedules(store: Reader, limit: int = 100) -> list[tuple[Conversation, Schedule]]:
    """Schedules whose date has come and that have not fired, oldest first."""
    s = ScheduleRow
    async with store.reading() as session:
        rows = await session.execute(
            select(*CONVERSATION, s)
            .join(s, ConversationRow.id == s.conversation_id)
            .where(s.fired_at.is_(None), s.due_at <= utcnow())
            .order_by(s.due_at)
            .limit(limit)
        )
        return [(to_conversation(row._mapping), to_schedule(row.ScheduleRow)) for row in rows]


def mark_fired(connection: Connection, schedule: Schedule) -> None:
    """The prompt is stored: the schedule is done (unless it was moved meanwhile)."""
    s = ScheduleRow.__table__.c
    connection.execute(
        update(ScheduleRow).where(s.id == schedule.id, s.due_at == schedule.due_at).values(fired_at=utcnow())
    )


async def participants(
    store: Reader,
    *,
    channels: Collection[str],
    platform: str | None = None,
    identifier: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[Participant]:
    """People of these channels (by conversation id, after ``after``), with data and schedules."""
    c = ConversationRow
    query = select(*CONVERSATION).where(c.channel.in_(channels), c.id > after).order_by(c.id).limit(limit)
    if platform is not None:
        query = query.where((c.platform == platform) | (c.channel == platform))
    if identifier is not None:
        query = query.where(c.person_key == identifier)
    async with store.reading() as session:
        conversations = [to_conversation(r._mapping) for r in await session.execute(query)]
        ids = [conversation.id for conversation in conversations]
        data = {
            r.conversation_id: dict(r.data or {})
            for r in await session.scalars(
                select(ParticipantDataRow).where(ParticipantDataRow.conversation_id.in_(ids))
            )
        }
        schedules: dict[int, list[Schedule]] = {}
        for row in await session.scalars(
            select(ScheduleRow).where(ScheduleRow.conversation_id.in_(ids)).order_by(ScheduleRow.due_at)
        ):
            schedules.setdefault(row.conversation_id, []).append(to_schedule(row))
    return [Participant(c, data.get(c.id, {}), schedules.get(c.id, [])) for c in conversations]
