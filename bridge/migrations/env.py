"""Alembic environment: async engines, run through ``run_sync``."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from bridge.store.db import create_engine
from bridge.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return str(
        config.attributes.get("database_url")
        or os.environ.get("DATABASE_URL")
        or "sqlite+aiosqlite:///./bridge.db"
    )


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
