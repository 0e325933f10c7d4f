"""bot_budgets: one request budget per bot team (OCS), shared by every process

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bot_budgets",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("window", sa.BigInteger, nullable=False),
        sa.Column("used", sa.Integer, nullable=False),
        sa.Column("late", sa.Integer, nullable=False),
        sa.Column("ceiling", sa.Integer, nullable=True),
        sa.Column("paused_until", sa.DateTime(), nullable=True),
        sa.Column("waited_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("bot_budgets")
