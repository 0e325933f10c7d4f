"""Platform events as Writer operations (plain functions on a ``Connection``): who blocked the bot,
which chat moved, what the platform reported on a part. Each is safe to apply twice."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, select, update

from bridge.store.tables import ConversationRow, PartRow

C = ConversationRow.__table__.c
P = PartRow.__table__.c
DELIVERY_RANK = {
    "accepted": 0,
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "read": 4,
}
WAKE = (
    update(ConversationRow)
    .where(C.id == bindparam("w_id"))
    .values(inbox_seq=C.inbox_seq + 1, next_run_at=bindparam("w_now"))
)


def skip_pending_parts(connection: Connection, conversation_id: int, reason: str) -> None:
    connection.execute(
        update(PartRow)
        .where(P.conversation_id == conversation_id, P.status == "pending")
        .values(status="skipped", error=reason)
    )


def block(connection: Connection, conversation_id: int, reason: str) -> None:
    """The person cannot be reached: send nothing more until they write again."""
    connection.execute(update(ConversationRow).where(C.id == conversation_id).values(blocked=True))
    skip_pending_parts(connection, conversation_id, reason)


def set_blocked(connection: Connection, channel: str, key: str, blocked: bool) -> None:
    """A blocked person gets nothing more (their pending parts are skipped); unblocked, they may."""
    conversation_id = connection.scalar(
        update(ConversationRow)
        .where(C.channel == channel, C.person_key == key)
        .values(blocked=blocked)
        .returning(C.id)
    )
    if blocked and conversation_id is not None:
        skip_pending_parts(connection, conversation_id, "person blocked the bot")


def move_chat(connection: Connection, channel: str, old: str, new: str) -> None:
    """The conversations replying to ``old`` follow the chat to ``new`` (``old:…`` keys too). One
    that would clash with a conversation the new chat already has keeps its old key."""
    rows = connection.execute(select(C.id, C.person_key).where(C.channel == channel, C.address == old)).all()
    for row in rows:
        chat, sep, rest = row.person_key.partition(":")
        if chat != old:
            continue
        key = f"{new}{sep}{rest}"
        taken = connection.scalar(select(C.id).where(C.channel == channel, C.person_key == key))
        if taken is None:
            connection.execute(
                update(ConversationRow).where(C.id == row.id).values(person_key=key, address=new)
            )


def record_delivery(
    connection: Connection, channel: str, platform_id: str, status: str, reason: str
) -> int | None:
    """Keep a platform's report on the part it sent (reports may come out of order: a status only
    ever moves forward; a failure makes the part a dead letter). The part's conversation, or None."""
    row = connection.execute(
        select(P.id, P.conversation_id, P.delivery_status)
        .join(ConversationRow.__table__, C.id == P.conversation_id)
        .where(P.platform_message_id == platform_id, C.channel == channel)
    ).first()
    if row is None:
        return None
    if DELIVERY_RANK.get(status, 0) > DELIVERY_RANK.get(row.delivery_status or "", -1):
        values: dict[str, Any] = {"delivery_status": status}
        if reason:
            values["error"] = reason
        if status in ("failed", "undelivered"):  # a dead letter: visible and retryable
            values["status"] = "dead"
        connection.execute(update(PartRow).where(P.id == row.id).values(**values))
    return int(row.conversation_id)


def send_again(
    connection: Connection,
    merged: Any,
    conversation_id: int,
    platform_id: str,
    state: dict[str, Any],
    now: datetime,
) -> None:
    """The platform refused a part it had accepted, for now: queue it again at once, with these
    changes to the conversation's state (they tell the channel how to send it this time)."""
    blocked = connection.scalar(select(C.blocked).where(C.id == conversation_id))
    if blocked is None or blocked:
        return
    connection.execute(
        update(PartRow)
        .where(P.conversation_id == conversation_id, P.platform_message_id == platform_id)
        .values(status="pending", next_attempt_at=now, platform_message_id=None)
    )
    patch = bindparam("s_patch", json.dumps(state), type_=String())
    connection.execute(
        update(ConversationRow).where(C.id == conversation_id).values(state=merged(C.state, patch))
    )
    connection.execute(WAKE, {"w_id": conversation_id, "w_now": now})
