"""Human handoff in the store: which session a human agent has (``handoff_session``), which one
the bot's side closed (``closed_session``); a new session is neither. Writer operations."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, Connection, update

from bridge.store.proactive_tables import HistoryCursorRow
from bridge.store.tables import ConversationRow, utcnow

C = ConversationRow.__table__.c
H = HistoryCursorRow.__table__.c


def handed_off() -> ColumnElement[bool]:
    """Conversations whose current session is with a human agent."""
    return C.handoff_session == C.session_id


def mark_sessions(
    connection: Connection, channels: Collection[str], handed_off: Collection[str], closed: Collection[str]
) -> list[int]:
    """The conversations (of these channels) in these sessions are handed off or closed, and their
    history is due for a read now (not at the end of its interval); their ids."""
    found: set[int] = set()
    for column, sessions in (("handoff_session", handed_off), ("closed_session", closed)):
        for session_id in sessions:
            marked = connection.scalars(
                update(ConversationRow)
                .where(C.session_id == session_id, C.channel.in_(channels))
                .values({column: session_id})
                .returning(C.id)
            )
            found.update(marked)
    if found:
        connection.execute(
            update(HistoryCursorRow).where(H.conversation_id.in_(found)).values(read_after=utcnow())
        )
    return sorted(found)


def mark_handed_off(connection: Connection, conversation_id: int, session_id: str) -> None:
    """The bot said the session is with a human agent (as it answered a message)."""
    connection.execute(
        update(ConversationRow).where(C.id == conversation_id).values(handoff_session=session_id)
    )


def forget_session(connection: Connection, conversation_id: int, session_id: str) -> None:
    """The session was closed and its history read: the next message opens a new one."""
    connection.execute(
        update(ConversationRow)
        .where(C.id == conversation_id, C.session_id == session_id)
        .values(session_id=None)
    )
