"""Dead letters: messages that could not be answered (``in-N``) and parts that could not be
delivered (``out-N``), listed and queued again by the operator (``bridge dead-letters``)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from sqlalchemy import Connection, literal, select, union_all, update

from bridge.store.records import DeadLetter, to_dead_letter
from bridge.store.statements import wake
from bridge.store.tables import ConversationRow, MessageRow, PartRow, utcnow

C = ConversationRow.__table__.c
M = MessageRow.__table__.c
P = PartRow.__table__.c

REMOVED = "(removed by retention)"  # shown in place of a dead letter's text that retention emptied

# (in | out, id, channel, person's key, since when, why, when retention emptied its text)
DEAD = union_all(
    select(
        literal("in").label("kind"), M.id, C.channel, C.person_key, M.received_at.label("at"), M.error,
        M.expired_at,
    )
    .join(ConversationRow, C.id == M.conversation_id)
    .where(M.status == "dead"),
    select(
        literal("out").label("kind"), P.id, C.channel, C.person_key, P.created_at.label("at"), P.error,
        P.expired_at,
    )
    .join(ConversationRow, C.id == P.conversation_id)
    .where(P.status == "dead"),
)  # fmt: skip


class Revived(Enum):
    """What asking to send a dead letter again did."""

    QUEUED = "queued"
    MISSING = "missing"  # no such dead letter (any more)
    EXPIRED = "expired"  # retention emptied its text: there is nothing to send


def letters(rows: Iterable[Any]) -> list[DeadLetter]:
    """The rows of ``DEAD`` as dead letters, oldest first."""
    return sorted(map(to_dead_letter, rows), key=lambda d: d.at)


def revive(connection: Connection, ref: str) -> Revived:
    """Queue a dead letter again (``in-N`` or ``out-N``), unless retention emptied its text."""
    kind, _, number = ref.partition("-")
    if kind not in ("in", "out") or not number.isdigit():
        return Revived.MISSING
    table = MessageRow if kind == "in" else PartRow
    now = utcnow()
    values: dict[str, object] = {"status": "pending", "attempts": 0, "next_attempt_at": now, "error": None}
    if table is MessageRow:
        values["relayed_at"] = None  # the operator asks for a fresh attempt, not the failed answer
    dead = (table.id == int(number)) & (table.status == "dead")
    conversation_id = connection.scalar(
        update(table)
        .where(dead, table.expired_at.is_(None))
        .values(**values)
        .returning(table.conversation_id)
    )
    if conversation_id is None:
        expired = connection.scalar(select(table.id).where(dead, table.expired_at.is_not(None)))
        return Revived.MISSING if expired is None else Revived.EXPIRED
    connection.execute(update(ConversationRow).where(C.id == conversation_id).values(blocked=False))
    wake(connection, conversation_id, now)
    return Revived.QUEUED
