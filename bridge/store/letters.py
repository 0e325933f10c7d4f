"""Dead letters: messages that could not be answered (``in-N``) and parts that could not be
delivered (``out-N``), listed and queued again by the operator (``bridge dead-letters``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, literal, select, union_all, update

from bridge.store.records import DeadLetter, to_dead_letter
from bridge.store.statements import wake
from bridge.store.tables import ConversationRow, MessageRow, PartRow, utcnow

C = ConversationRow.__table__.c
M = MessageRow.__table__.c
P = PartRow.__table__.c

# (in | out, id, channel, person's key, since when, why)
DEAD = union_all(
    select(literal("in").label("kind"), M.id, C.channel, C.person_key, M.received_at.label("at"), M.error)
    .join(ConversationRow, C.id == M.conversation_id)
    .where(M.status == "dead"),
    select(literal("out").label("kind"), P.id, C.channel, C.person_key, P.created_at.label("at"), P.error)
    .join(ConversationRow, C.id == P.conversation_id)
    .where(P.status == "dead"),
)


def letters(rows: Iterable[Any]) -> list[DeadLetter]:
    """The rows of ``DEAD`` as dead letters, oldest first."""
    return sorted(map(to_dead_letter, rows), key=lambda d: d.at)


def revive(connection: Connection, ref: str) -> bool:
    """Queue a dead letter again (``in-N`` or ``out-N``); False if there is no such dead letter."""
    kind, _, number = ref.partition("-")
    if kind not in ("in", "out") or not number.isdigit():
        return False
    table = MessageRow if kind == "in" else PartRow
    now = utcnow()
    values: dict[str, object] = {"status": "pending", "attempts": 0, "next_attempt_at": now, "error": None}
    if table is MessageRow:
        values["relayed_at"] = None  # the operator asks for a fresh attempt, not the failed answer
    conversation_id = connection.scalar(
        update(table)
        .where(table.id == int(number), table.status == "dead")
        .values(**values)
        .returning(table.conversation_id)
    )
    if conversation_id is None:
        return False
    connection.execute(update(ConversationRow).where(C.id == conversation_id).values(blocked=False))
    wake(connection, conversation_id, now)
    return True
