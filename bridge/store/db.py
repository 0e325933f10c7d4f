"""Engine factory and migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, event, pool
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

ROOT = Path(__file__).resolve().parents[2]


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and write-locking transactions."""
    if not url.startswith("sqlite"):
        return create_async_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
        )
    # hide_parameters: database errors must not put message texts or ids into logs
    engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
    _sqlite_setup(engine.sync_engine)
    return engine


def sqlite_writer_engine(engine: AsyncEngine) -> Engine:
    """A plain ``sqlite3`` engine on the same file, for the store's writer thread (one connection)."""
    url = engine.url.set(drivername="sqlite")
    writer = sqlalchemy.create_engine(
        url,
        poolclass=pool.StaticPool,
        connect_args={"timeout": 30, "check_same_thread": False},
        hide_parameters=True,
    )
    _sqlite_setup(writer)
    return writer


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Take the write lock up front: a deferred transaction that upgrades later can fail
        # with "database is locked" without waiting for the busy timeout.
        readonly = conn.get_execution_options().get("readonly")
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    script_location = ROOT / "alembic"
    if not script_location.is_dir():
        script_location = Path.cwd() / "alembic"
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["database_url"] = url
    return config


def migrate_sync(url: str) -> None:
    """Apply every migration (Alembic ``upgrade head``)."""
    from alembic import command

    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_alembic_config(url), "head")


async def migrate(url: str) -> None:
    await asyncio.to_thread(migrate_sync, url)
