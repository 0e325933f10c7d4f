"""What the operator reads and does (``/admin`` and the CLI): conversations, transcripts, dead
letters, counts, one person's data exported or erased, and the retention of old texts.

Reads use the store's reading sessions; every write is one ``Writer`` operation (Core SQL on the
connection it is given, nothing awaited inside).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, case, delete, func, select, update

from bridge.store.db import Reader
from bridge.store.letters import REMOVED
from bridge.store.proactive_tables import HistoryCursorRow, ParticipantDataRow, ScheduleRow
from bridge.store.session_tokens import SessionTokenRow
from bridge.store.tables import ConversationRow, MessageRow, PartRow, utcnow

C = ConversationRow.__table__.c
M = MessageRow.__table__.c
P = PartRow.__table__.c
RETENTION_BATCH = 200  # rows of each table emptied in one small transaction


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: int
    channel: str
    person_key: str
    person_name: str
    session_id: str | None
    state: str  # blocked | working | waiting | idle
    last_activity_at: datetime
    messages: int
    dead: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a transcript: what the person sent, or what the bot answered and its delivery."""

    at: datetime
    sender: str  # person | bot
    kind: str
    text: str
    status: str  # pending | done | dead | sent | skipped, and the platform's delivery report
    detail: str  # when it was delivered, or why it failed


@dataclass(frozen=True, slots=True)
class DeadLetterText:
    ref: str  # in-N (a message not answered) or out-N (a part not delivered)
    conversation_id: int
    channel: str
    person_key: str
    at: datetime
    text: str  # "(removed by retention)" once retention emptied it
    reason: str


@dataclass(frozen=True, slots=True)
class Counts:
    """One channel's traffic in the last hour and the last day (kept through retention)."""

    channel: str
    received_hour: int
    received_day: int
    delivered_hour: int
    delivered_day: int
    dead_day: int


def _state(blocked: bool, lease_until: datetime | None, next_run_at: datetime | None) -> str:
    if blocked:
        return "blocked"
    if lease_until is not None and lease_until > utcnow():
        return "working"
    return "waiting" if next_run_at is not None else "idle"


async def conversations(
    store: Reader, channel: str | None = None, limit: int = 200, *, conversation_id: int | None = None
) -> list[ConversationSummary]:
    """The most recently active conversations first (of one channel, or just one)."""
    messages = select(func.count()).where(M.conversation_id == C.id).scalar_subquery()
    dead = (
        select(func.count()).where(M.conversation_id == C.id, M.status == "dead").scalar_subquery()
        + select(func.count()).where(P.conversation_id == C.id, P.status == "dead").scalar_subquery()
    )
    query = select(
        C.id, C.channel, C.person_key, C.person_name, C.session_id, C.blocked, C.lease_until, C.next_run_at,
        C.last_activity_at, messages, dead,
    ).order_by(C.last_activity_at.desc(), C.id.desc()).limit(limit)  # fmt: skip
    if channel is not None:
        query = query.where(C.channel == channel)
    if conversation_id is not None:
        query = query.where(C.id == conversation_id)
    async with store.reading() as session:
        rows = (await session.execute(query)).all()
    return [
        ConversationSummary(
            id, ch, key, name, sid, _state(blocked, lease, due), at, int(count or 0), int(failed or 0)
        )
        for id, ch, key, name, sid, blocked, lease, due, at, count, failed in rows
    ]


async def conversation(store: Reader, conversation_id: int) -> ConversationSummary | None:
    found = await conversations(store, conversation_id=conversation_id)
    return found[0] if found else None


async def find(store: Reader, channel: str, person_key: str) -> int | None:
    """The conversation id of a person on a channel."""
    async with store.reading() as session:
        return await session.scalar(select(C.id).where(C.channel == channel, C.person_key == person_key))


async def transcript(store: Reader, conversation_id: int) -> list[Entry]:
    """Every message and reply part of a conversation, in the order they happened."""
    async with store.reading() as session:
        inbound = (
            await session.execute(
                select(M.received_at, M.kind, M.text, M.status, M.error, M.done_at)
                .where(M.conversation_id == conversation_id)
                .order_by(M.id)
            )
        ).all()
        outbound = (
            await session.execute(
                select(P.created_at, P.text, P.attachments, P.status, P.delivery_status, P.error, P.sent_at)
                .where(P.conversation_id == conversation_id)
                .order_by(P.id)
            )
        ).all()
    entries = [
        Entry(at, "person", kind, text, status, error or (f"answered {_when(done)}" if done else ""))
        for at, kind, text, status, error, done in inbound
    ]
    for at, text, files, status, report, error, sent in outbound:
        detail = error or (f"delivered {_when(sent)}" if sent else "")
        names = ", ".join(str(f.get("name", "")) for f in files or ())
        shown = f"{text}\n[files: {names}]" if names else text
        entries.append(Entry(at, "bot", "reply", shown, report or status, detail))
    return sorted(entries, key=lambda e: e.at)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


async def dead_letters(store: Reader) -> list[DeadLetterText]:
    """Messages not answered and parts not delivered, with their text and reason, oldest first."""
    letters = []
    async with store.reading() as session:
        for kind, row, T, at in (("in", MessageRow, M, M.received_at), ("out", PartRow, P, P.created_at)):
            query = select(
                T.id, T.conversation_id, C.channel, C.person_key, at, T.text, T.error, T.expired_at
            )
            for i, c, ch, k, when, text, error, expired in await session.execute(
                query.join_from(row, ConversationRow).where(T.status == "dead")
            ):
                shown = REMOVED if expired is not None else text
                letters.append(DeadLetterText(f"{kind}-{i}", c, ch, k, when, shown, error or ""))
    return sorted(letters, key=lambda d: d.at)


async def counts(store: Reader) -> list[Counts]:
    """Messages received, parts delivered and dead letters per channel, last hour and day."""
    now = utcnow()
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)

    def split(at: Any) -> tuple[Any, Any]:  # (in the last hour, in the last day)
        return func.sum(case((at >= hour, 1), else_=0)), func.count()

    received = select(M.channel, *split(M.received_at)).where(M.received_at >= day).group_by(M.channel)
    delivered = (
        select(C.channel, *split(P.sent_at))
        .join_from(PartRow, ConversationRow)
        .where(P.created_at >= day - timedelta(days=1), P.sent_at >= day)  # (created_at bounds the scan)
        .group_by(C.channel)
    )
    dead_in = (
        select(M.channel, func.count()).where(M.status == "dead", M.received_at >= day).group_by(M.channel)
    )
    dead_out = (
        select(C.channel, func.count())
        .join_from(PartRow, ConversationRow)
        .where(P.status == "dead", P.created_at >= day)
        .group_by(C.channel)
    )
    tally: dict[str, list[int]] = {}
    async with store.reading() as session:
        for first, query in ((0, received), (2, delivered), (4, dead_in), (4, dead_out)):
            for channel, *numbers in await session.execute(query):
                values = tally.setdefault(channel, [0, 0, 0, 0, 0])
                for offset, number in enumerate(numbers):
                    values[first + offset] += int(number or 0)
    return [Counts(channel, *values) for channel, values in sorted(tally.items())]


# one person's data --------------------------------------------------------------------------------
async def export(store: Reader, conversation_id: int) -> dict[str, Any] | None:
    """Everything stored about the person of a conversation, as JSON-ready data."""
    async with store.reading() as session:
        row = (
            await session.execute(select(ConversationRow.__table__).where(C.id == conversation_id))
        ).first()
        if row is None:
            return None
        messages = await session.execute(
            select(
                M.public_id, M.kind, M.text, M.what, M.status, M.error, M.received_at, M.done_at, M.context
            )
            .where(M.conversation_id == conversation_id)
            .order_by(M.id)
        )
        parts = await session.execute(
            select(P.text, P.attachments, P.status, P.delivery_status, P.error, P.created_at, P.sent_at)
            .where(P.conversation_id == conversation_id)
            .order_by(P.id)
        )
        data = await session.scalars(
            select(ParticipantDataRow).where(ParticipantDataRow.conversation_id == conversation_id)
        )
        schedules = await session.scalars(
            select(ScheduleRow).where(ScheduleRow.conversation_id == conversation_id)
        )
        fields = ("channel", "person_key", "address", "person_name", "platform", "session_id", "state")
        return _jsonable(
            {
                **{name: row._mapping[name] for name in fields},
                "blocked": row.blocked,
                "created_at": row.created_at,
                "last_activity_at": row.last_activity_at,
                "messages": [dict(m._mapping) for m in messages],
                "replies": [dict(p._mapping) for p in parts],
                "participant_data": [d.data for d in data],
                "schedules": [{"name": s.name, "prompt": s.prompt, "at": s.due_at} for s in schedules],
            }
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Erased:
    channel: str
    person_key: str
    session_id: str | None


def erase(connection: Connection, conversation_id: int) -> Erased | None:
    """Delete a conversation and everything kept with it (messages, parts, participant data,
    schedules, history cursor, its Chat API session tokens); what it was, or None. (``Store.erase``)"""
    row = connection.execute(
        select(C.channel, C.person_key, C.session_id, C.closed_session).where(C.id == conversation_id)
    ).first()
    if row is None:
        return None
    for table in (PartRow, MessageRow, ParticipantDataRow, ScheduleRow, HistoryCursorRow):
        connection.execute(delete(table).where(table.conversation_id == conversation_id))
    sessions = [s for s in (row.session_id, row.closed_session) if s]
    connection.execute(delete(SessionTokenRow).where(SessionTokenRow.session_id.in_(sessions)))
    connection.execute(delete(ConversationRow).where(C.id == conversation_id))
    return Erased(row.channel, row.person_key, row.session_id)


# retention ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetentionCursor:
    """How far retention has read each table. Ids grow with time, so each batch reads the next
    rows by primary key and never scans a table; a process starts again from the beginning (which
    also catches a message that was still waiting when retention first went past it)."""

    message_id: int = 0
    part_id: int = 0


def expire(
    connection: Connection, before: datetime, cursor: RetentionCursor, batch: int = RETENTION_BATCH
) -> tuple[RetentionCursor, int]:
    """Empty the texts of the next ``batch`` messages and parts past ``cursor`` stored before
    ``before`` (rows stay, so counts do; work still waiting keeps its text) and mark them
    ``expired_at`` (a dead letter without its text is not retried). The cursor moved on, and how
    many rows it went past (0: nothing older is left). (``Store.expire_texts``)"""
    now = utcnow()
    tables = (
        (MessageRow, M.received_at, cursor.message_id, {"text": "", "context": {}, "expired_at": now}),
        (PartRow, P.created_at, cursor.part_id, {"text": "", "attachments": [], "expired_at": now}),
    )
    ids, passed = [], 0
    for table, at, after, emptied in tables:
        c = table.__table__.c
        rows = connection.execute(select(c.id, at, c.status).where(c.id > after).order_by(c.id).limit(batch))
        old = list(itertools.takewhile(lambda row: row[1] < before, rows))
        finished = [row[0] for row in old if row[2] != "pending"]
        if finished:
            connection.execute(
                update(table).where(c.id.in_(finished), c.expired_at.is_(None)).values(**emptied)
            )
        ids.append(old[-1][0] if old else after)
        passed += len(old)
    return RetentionCursor(*ids), passed


def expire_tokens(connection: Connection, before: datetime) -> int:
    """Delete the Chat API session tokens started before ``before`` whose session is not that of a
    conversation active since (an idle conversation's, or a session left behind); how many.
    (``Store.expire_tokens``)"""
    active = select(C.session_id).where(C.last_activity_at >= before, C.session_id.is_not(None))
    T = SessionTokenRow.__table__.c
    gone = connection.execute(
        delete(SessionTokenRow).where(T.started_at < before, T.session_id.not_in(active))
    )
    return int(gone.rowcount or 0)
