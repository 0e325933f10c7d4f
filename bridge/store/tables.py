"""SQLAlchemy models. Conversations double as the job queue: ``next_run_at`` says when a
conversation has work, ``lease_owner``/``lease_until`` say which worker holds it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC, read back as aware UTC (SQLite keeps no time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


_OPEN = text("status IN ('pending', 'dead')")


def _open_index(table: str, at: str) -> Index:
    """Rows still waiting or dead only: the backlog gauges read them without scanning the table."""
    return Index(f"ix_{table}_open", "status", at, postgresql_where=_OPEN, sqlite_where=_OPEN)


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("channel", "person_key", name="uq_conversation_person"),
        Index("ix_conversations_next_run_at", "next_run_at"),
        Index("ix_conversations_session_id", "session_id"),  # a bot's events name the session
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(64))
    person_key: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(255))
    person_name: Mapped[str] = mapped_column(String(255), default="")
    platform: Mapped[str] = mapped_column(String(32), default="")
    session_id: Mapped[str | None] = mapped_column(String(255))
    handoff_session: Mapped[str | None] = mapped_column(String(255))  # the session a human agent has
    closed_session: Mapped[str | None] = mapped_column(String(255))  # the session the bot's side closed
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    blocked: Mapped[bool] = mapped_column(default=False)
    inbox_seq: Mapped[int] = mapped_column(BigInteger, default=0)  # bumped by every new piece of work
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MessageRow(Base):
    """An inbound message and its processing state (pending -> done | dead)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "platform_id", name="uq_inbound_platform_id"),
        Index("ix_inbound_conversation_status", "conversation_id", "status", "id"),
        _open_index("inbound_messages", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(64))
    platform_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    what: Mapped[str] = mapped_column(String(64), default="")
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    relayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last handed to the bot
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # text emptied by retention


class PartRow(Base):
    """One outbound message, in order within its conversation (pending -> sent | dead | skipped)."""

    __tablename__ = "outbound_parts"
    __table_args__ = (
        Index("ix_outbound_conversation_status", "conversation_id", "status", "id"),
        _open_index("outbound_parts", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id", ondelete="SET NULL"))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    error: Mapped[str | None] = mapped_column(Text)
    platform_message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    delivery_status: Mapped[str | None] = mapped_column(String(16))  # as the platform last reported
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # text emptied by retention


class HeartbeatRow(Base):
    """A worker process that is alive: it writes ``seen_at`` every few seconds (``/readyz``)."""

    __tablename__ = "worker_heartbeats"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
