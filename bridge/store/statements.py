"""Writes several parts of the store share, each one prebuilt statement: waking a conversation
(it has new work) and setting its bot session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, case, update

from bridge.store.tables import ConversationRow, UTCDateTime, utcnow

C = ConversationRow.__table__.c
_NOW = UTCDateTime()
_AT = bindparam("w_now", type_=_NOW)
# New work: ``inbox_seq`` tells a worker holding the conversation to read it again, and the
# conversation is due now (or earlier, if it already was: its place in the queue is kept).
_WAKE = (
    update(ConversationRow)
    .where(C.id == bindparam("w_id"))
    .values(inbox_seq=C.inbox_seq + 1, next_run_at=case((C.next_run_at <= _AT, C.next_run_at), else_=_AT))
)
_SET_SESSION = (
    update(ConversationRow)
    .where(C.id == bindparam("s_id"))
    .values(session_id=bindparam("s_session"), last_activity_at=bindparam("s_now", type_=_NOW))
)


def wake(connection: Connection, conversation_id: int, now: datetime | None = None) -> None:
    """The conversation has new work: a worker runs it now."""
    connection.execute(_WAKE, {"w_id": conversation_id, "w_now": now or utcnow()})


def set_session(connection: Connection, conversation_id: int, session_id: str | None) -> None:
    """The conversation's bot session (None: the next message opens a new one)."""
    values = {"s_id": conversation_id, "s_session": session_id, "s_now": utcnow()}
    connection.execute(_SET_SESSION, values)
