"""proactive messages: participant data, schedules, session history cursors

Revision ID: 0005
Revises: 0004b
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004b"
branch_labels = None
depends_on = None


def _conversation() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "conversation_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "participant_data",
        _conversation(),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(64), primary_key=True),
        _conversation(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("fired_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_schedules_due", "schedules", ["fired_at", "due_at"])
    op.create_index("ix_schedules_conversation_id", "schedules", ["conversation_id"])
    op.create_table(
        "history_cursors",
        _conversation(),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("position", sa.String(255), nullable=True),
        sa.Column("read_after", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id"),
    )


def downgrade() -> None:
    op.drop_table("history_cursors")
    op.drop_index("ix_schedules_conversation_id", "schedules")
    op.drop_index("ix_schedules_due", "schedules")
    op.drop_table("schedules")
    op.drop_table("participant_data")
