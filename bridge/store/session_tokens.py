"""The session tokens of OCS's Chat API (each chat session's ``X-Session-Token``), kept so that a
conversation goes on in its session after a restart or in another process. A token is a secret:
never logged, never shown on the admin page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, String, Text, bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.tables import Base, UTCDateTime


class SessionTokenRow(Base):
    __tablename__ = "bot_session_tokens"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the token expires a time after it


SESSION_TOKEN = select(SessionTokenRow.token, SessionTokenRow.started_at).where(
    SessionTokenRow.session_id == bindparam("session_id")
)


def keep(connection: Connection, session_id: str, token: str, started_at: datetime) -> None:
    """Keep a new session's token (a session's token never changes). (``Store.keep_token``)"""
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    row = {"session_id": session_id, "token": token, "started_at": started_at}
    connection.execute(insert(SessionTokenRow).values(row).on_conflict_do_nothing())


def forget(connection: Connection, session_id: str) -> None:
    """The session ended: its token is of no more use. (``Store.forget_token``)"""
    connection.execute(delete(SessionTokenRow).where(SessionTokenRow.session_id == session_id))
