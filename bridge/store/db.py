"""Engine factory, migrations (shipped inside the package) and the schema's state."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy
from sqlalchemy import Engine, event, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bridge.settings.database import postgres_ssl


class Reader(Protocol):
    """What the store's read functions need of it (``Store`` is one)."""

    def reading(self) -> AsyncSession: ...


# What an unreachable or broken database raises (asyncpg's connection errors are OSErrors).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)


def short(exc: BaseException) -> str:
    """An error in a few words for a log line or a detail: its type and first line, cut short."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and write-locking transactions."""
    # hide_parameters: database errors must not put message texts or ids into logs
    if not url.startswith("sqlite"):
        parsed, connect_args = postgres_ssl(url)
        return create_async_engine(
            parsed,
            connect_args={"timeout": 10, **connect_args},
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            hide_parameters=True,
        )
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

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = url
    return config


@functools.cache
def _revisions() -> tuple[str, frozenset[str]]:
    """The newest migration this code ships (what the database must be at) and all of them."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(MIGRATIONS))
    head = scripts.get_current_head()
    assert head is not None
    return head, frozenset(s.revision for s in scripts.walk_revisions())


def migrate_sync(url: str) -> None:
    """Apply every migration (Alembic ``upgrade head``)."""
    from alembic import command

    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_alembic_config(url), "head")


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names (None: not SQLite, or a database in memory)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


async def migrate(url: str) -> None:
    await asyncio.to_thread(migrate_sync, url)


async def current_revisions(engine: AsyncEngine) -> list[str]:
    """The migrations the database is at (none: not migrated). Errors propagate."""

    def read(connection: Any) -> list[str]:
        from sqlalchemy import inspect

        if not inspect(connection).has_table("alembic_version"):
            return []
        return [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def schema_problem(engine: AsyncEngine) -> str | None:
    """None when the database is at the code's schema; else what is wrong, in a few words.

    It also tells whether the database answers at all (errors propagate)."""
    revisions = await current_revisions(engine)
    head, known = _revisions()
    if not revisions:
        return "not migrated (run `chatbridge migrate`)"
    if head in revisions or any(r not in known for r in revisions):
        return None  # current, or a newer release migrated it (a rolling upgrade): a superset
    return f"behind the code (at {', '.join(revisions)}, needs {head}; run `chatbridge migrate`)"
