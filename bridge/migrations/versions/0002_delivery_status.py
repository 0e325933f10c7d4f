"""delivery status of outbound parts (platform status callbacks)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_parts") as batch:
        batch.add_column(sa.Column("delivery_status", sa.String(length=16), nullable=True))
        batch.create_index("ix_outbound_parts_platform_message_id", ["platform_message_id"])


def downgrade() -> None:
    with op.batch_alter_table("outbound_parts") as batch:
        batch.drop_index("ix_outbound_parts_platform_message_id")
        batch.drop_column("delivery_status")
