"""worker heartbeats (readiness in a scaled layout) and indexes for the backlog gauges

Revision ID: 0004b
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004b"
down_revision = "0003"
branch_labels = None
depends_on = None

_OPEN = "status IN ('pending', 'dead')"


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
    )
    # Small partial indexes: only rows still waiting or dead, so /metrics reads them cheaply.
    for table, at in (("inbound_messages", "received_at"), ("outbound_parts", "created_at")):
        op.create_index(
            f"ix_{table}_open",
            table,
            ["status", at],
            postgresql_where=sa.text(_OPEN),
            sqlite_where=sa.text(_OPEN),
        )


def downgrade() -> None:
    op.drop_index("ix_outbound_parts_open", "outbound_parts")
    op.drop_index("ix_inbound_messages_open", "inbound_messages")
    op.drop_table("worker_heartbeats")
