"""Tables of proactive messages: participant data and schedules per person and chatbot, and the
cursor of each conversation's bot-side history (messages the bot's side wrote by itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.tables import Base, UTCDateTime, utcnow


class ParticipantDataRow(Base):
    """A person's data for the chatbot their conversation routes to (merged by each update)."""

    __tablename__ = "participant_data"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScheduleRow(Base):
    """Ask the bot with ``prompt`` at ``due_at`` in the person's session; ``fired_at`` once stored."""

    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "fired_at", "due_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), default="")
    prompt: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HistoryCursorRow(Base):
    """Where the follower stopped reading a conversation's session history, and until when a
    process holds the next read (so that processes do not read the same history at once)."""

    __tablename__ = "history_cursors"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    session_id: Mapped[str] = mapped_column(String(255))
    position: Mapped[str | None] = mapped_column(String(255))
    read_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
