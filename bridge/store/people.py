"""The people the bridge serves, as the proactive API sees them: their data per chatbot, their
schedules, whether they can be reached, and proactive messages already stored."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from bridge.model import Conversation, Kind
from bridge.store.proactive_tables import ParticipantDataRow, ScheduleRow
from bridge.store.records import to_conversation
from bridge.store.repo import Store
from bridge.store.tables import ConversationRow, MessageRow, utcnow

PROACTIVE_KINDS = (Kind.PROMPT.value, Kind.DELIVER.value)


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    name: str
    prompt: str
    due_at: datetime
    fired_at: datetime | None = None


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


async def is_blocked(store: Store, conversation_id: int) -> bool:
    async with store.reading() as session:
        blocked = await session.scalar(
            select(ConversationRow.blocked).where(ConversationRow.id == conversation_id)
        )
        return bool(blocked)


async def stored(store: Store, channel: str, platform_id: str) -> bool:
    """Whether a message with this id is already stored (a retried trigger)."""
    async with store.reading() as session:
        found = await session.scalar(
            select(MessageRow.id).where(MessageRow.channel == channel, MessageRow.platform_id == platform_id)
        )
        return found is not None


async def proactive_ids(store: Store, message_ids: Collection[int]) -> set[int]:
    """Which of these inbound messages are proactive (their answers are not a widget task's)."""
    if not message_ids:
        return set()
    async with store.reading() as session:
        rows = await session.scalars(
            select(MessageRow.id).where(MessageRow.id.in_(message_ids), MessageRow.kind.in_(PROACTIVE_KINDS))
        )
        return set(rows)


async def data_of(store: Store, conversation_id: int) -> dict[str, Any] | None:
    """The person's data (None if they have none)."""
    async with store.reading() as session:
        row = await session.get(ParticipantDataRow, conversation_id)
        return dict(row.data) if row is not None and row.data else None


async def merge_data(store: Store, conversation_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Merge ``data`` into the person's data (top-level keys replaced); the merged data."""
    async with store.writing() as session:
        row = await session.get(ParticipantDataRow, conversation_id)
        if row is None:
            row = ParticipantDataRow(conversation_id=conversation_id, data=dict(data), updated_at=utcnow())
            session.add(row)
        else:
            row.data = {**(row.data or {}), **data}
            row.updated_at = utcnow()
        return dict(row.data)


async def save_schedules(store: Store, conversation_id: int, changes: Sequence[ScheduleChange]) -> None:
    """Create, move or remove schedules, all or none. An unknown id is created with that id (as OCS
    does); ``UnknownSchedule`` for another person's id, or an unknown one without prompt and date."""
    async with store.writing() as session:
        for change in changes:
            if change.id is None:
                session.add(_schedule_row(secrets.token_hex(8), conversation_id, change))
                continue
            row = await session.get(ScheduleRow, change.id)
            if row is None and not change.delete and change.prompt and change.due_at is not None:
                session.add(_schedule_row(change.id, conversation_id, change))  # OCS upserts by id
                continue
            if row is None or row.conversation_id != conversation_id:
                raise UnknownSchedule(change.id)
            if change.delete:
                await session.execute(delete(ScheduleRow).where(ScheduleRow.id == change.id))
                continue
            row.name = change.name if change.name is not None else row.name
            row.prompt = change.prompt if change.prompt is not None else row.prompt
            if change.due_at is not None and change.due_at != row.due_at:
                row.due_at, row.fired_at = change.due_at, None  # moved: it fires (again) then


def _schedule_row(schedule_id: str, conversation_id: int, change: ScheduleChange) -> ScheduleRow:
    assert change.due_at is not None
    return ScheduleRow(
        id=schedule_id,
        conversation_id=conversation_id,
        name=change.name or "",
        prompt=change.prompt or "",
        due_at=change.due_at,
        created_at=utcnow(),
    )


async def due_schedules(store: Store, limit: int = 100) -> list[tuple[Conversation, Schedule]]:
    """Schedules whose date has come and that have not fired, oldest first."""
    s = ScheduleRow
    async with store.reading() as session:
        rows = await session.execute(
            select(s, ConversationRow)
            .join(ConversationRow, ConversationRow.id == s.conversation_id)
            .where(s.fired_at.is_(None), s.due_at <= utcnow())
            .order_by(s.due_at)
            .limit(limit)
        )
        return [(to_conversation(c), _schedule(row)) for row, c in rows]


async def mark_fired(store: Store, schedule: Schedule) -> None:
    """The prompt is stored: the schedule is done (unless it was moved meanwhile)."""
    async with store.writing() as session:
        await session.execute(
            update(ScheduleRow)
            .where(ScheduleRow.id == schedule.id, ScheduleRow.due_at == schedule.due_at)
            .values(fired_at=utcnow())
        )


async def participants(
    store: Store,
    *,
    channels: Collection[str],
    platform: str | None = None,
    identifier: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[Participant]:
    """People of these channels (by conversation id, after ``after``), with data and schedules."""
    c = ConversationRow
    query = select(c).where(c.channel.in_(channels), c.id > after).order_by(c.id).limit(limit)
    if platform is not None:
        query = query.where((c.platform == platform) | (c.channel == platform))
    if identifier is not None:
        query = query.where(c.person_key == identifier)
    async with store.reading() as session:
        conversations = [to_conversation(r) for r in await session.scalars(query)]
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
            schedules.setdefault(row.conversation_id, []).append(_schedule(row))
    return [Participant(c, data.get(c.id, {}), schedules.get(c.id, [])) for c in conversations]


def _schedule(row: ScheduleRow) -> Schedule:
    return Schedule(row.id, row.name, row.prompt, row.due_at, row.fired_at)
