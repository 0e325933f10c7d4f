"""What a platform tells about a conversation (blocked or unblocked, a chat moved, a delivery
report, a part to send again), each a Writer operation: a plain function on a connection, no
awaiting inside, which ``bridge.store.inbound`` applies in the transaction that accepts the
request (values arrive cleaned, ``bridge.store.records.clean_received``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bridge.store.statements import wake
from bridge.store.tables import ConversationRow, PartRow, utcnow

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
_SKIP_PENDING = (
    update(PartRow)
    .where(P.conversation_id == bindparam("k_id"), P.status == "pending")
    .values(status="skipped", error=bindparam("k_reason"))
)
_BLOCK = update(ConversationRow).where(C.id == bindparam("k_id")).values(blocked=True)


def block(connection: Connection, conversation_id: int, reason: str) -> None:
    """The person cannot be reached: send nothing more (their pending parts are skipped) until
    they write again."""
    connection.execute(_BLOCK, {"k_id": conversation_id})
    connection.execute(_SKIP_PENDING, {"k_id": conversation_id, "k_reason": reason})


def set_blocked(connection: Connection, channel: str, key: str, blocked: bool) -> None:
    """A blocked person gets nothing more; their pending parts are skipped. Unblocked, they may."""
    conversation_id = connection.scalar(
        update(ConversationRow)
        .where(C.channel == channel, C.person_key == key)
        .values(blocked=blocked)
        .returning(C.id)
    )
    if blocked and conversation_id is not None:
        connection.execute(_SKIP_PENDING, {"k_id": conversation_id, "k_reason": "person blocked the bot"})


def move_chat(connection: Connection, channel: str, old: str, new: str) -> None:
    """The conversations replying to ``old`` follow the chat to ``new`` (``old:…`` keys too). One
    that would clash with a conversation the new chat already has keeps its old key."""
    rows = connection.execute(select(C.id, C.person_key).where(C.channel == channel, C.address == old)).all()
    for row in rows:
        chat, sep, rest = row.person_key.partition(":")
        if chat != old:
            continue
        key = f"{new}{sep}{rest}"
        if connection.scalar(select(C.id).where(C.channel == channel, C.person_key == key)) is None:
            connection.execute(
                update(ConversationRow).where(C.id == row.id).values(person_key=key, address=new)
            )


def record_delivery(
    connection: Connection, channel: str, platform_id: str, status: str, reason: str
) -> int | None:
    """Keep a platform's delivery report on the part it sent (reports may come out of order:
    a status only ever moves forward). The part's conversation id, or None if unknown."""
    part = _sent_part(connection, channel, platform_id)
    if part is None:
        return None
    if DELIVERY_RANK.get(status, 0) > DELIVERY_RANK.get(part.delivery_status or "", -1):
        values: dict[str, Any] = {"delivery_status": status}
        if reason:
            values["error"] = reason
        if status in ("failed", "undelivered"):  # a dead letter: visible and retryable
            values["status"] = "dead"
        connection.execute(update(PartRow).where(P.id == part.id).values(**values))
    return int(part.conversation_id)


def send_again(connection: Connection, channel: str, platform_id: str, state: dict[str, Any]) -> bool:
    """The platform refused a part it had accepted, for now: queue it again at once, with these
    changes to the conversation's state (they tell the channel how to send it this time).
    False if the part is unknown or the person blocked the bot. (Values arrive cleaned.)"""
    part = _sent_part(connection, channel, platform_id)
    if part is None:
        return False
    conversation = connection.execute(
        select(C.blocked, C.state).where(C.id == part.conversation_id)
    ).one_or_none()
    if conversation is None or conversation.blocked:
        return False
    now = utcnow()
    connection.execute(
        update(PartRow)
        .where(P.id == part.id)
        .values(status="pending", next_attempt_at=now, platform_message_id=None)
    )
    merged = {**(conversation.state or {}), **state}
    connection.execute(update(ConversationRow).where(C.id == part.conversation_id).values(state=merged))
    wake(connection, part.conversation_id, now)
    return True


def _sent_part(connection: Connection, channel: str, platform_id: str) -> Any:
    """The part a platform sent with this id (its id, conversation and delivery status), or None."""
    return connection.execute(
        select(P.id, P.conversation_id, P.delivery_status)
        .join(ConversationRow, C.id == P.conversation_id)
        .where(P.platform_message_id == platform_id, C.channel == channel)
    ).first()
