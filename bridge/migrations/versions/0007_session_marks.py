"""handoff and closing as typed columns of the conversation (they were keys of its JSON state)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (column, state key): the session a human agent has, the session the bot's side closed
MARKS = (("handoff_session", "handoff"), ("closed_session", "closed"))


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        for column, _ in MARKS:
            batch.add_column(sa.Column(column, sa.String(255), nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    for column, key in MARKS:
        if postgres:
            op.execute(
                f"UPDATE conversations SET {column} = state::jsonb ->> '{key}', "
                f"state = (state::jsonb - '{key}')::json WHERE state::jsonb ? '{key}'"
            )
        else:
            op.execute(
                f"UPDATE conversations SET {column} = json_extract(state, '$.{key}'), "
                f"state = json_remove(state, '$.{key}') WHERE json_type(state, '$.{key}') IS NOT NULL"
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for column, key in MARKS:
        if postgres:
            op.execute(
                f"UPDATE conversations SET state = (coalesce(state::jsonb, '{{}}'::jsonb) "
                f"|| jsonb_build_object('{key}', {column}))::json WHERE {column} IS NOT NULL"
            )
        else:
            op.execute(
                f"UPDATE conversations SET state = json_set(coalesce(state, '{{}}'), '$.{key}', {column}) "
                f"WHERE {column} IS NOT NULL"
            )
    with op.batch_alter_table("conversations") as batch:
        for column, _ in MARKS:
            batch.drop_column(column)
