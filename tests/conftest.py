"""Shared fixtures: the fake OCS server, a bridge app with a recording channel, PostgreSQL, and a guard
that fails any test reaching beyond loopback. Platform fixtures are in each folder's ``conftest.py``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge.settings import BotSettings, load_settings
from bridge.store import Store
from bridge.store.db import create_engine, migrate
from fakes.channel import RecordingChannel
from fakes.ocs import FakeOCS
from fakes.opencx import FakeOpenCx
from fakes.telegram import FakeTelegram
from fakes.twilio import FakeTwilio
from tests.harness import Harness, make_settings, ocs_bot, start_bridge
from tests.netguard import network_guard as network_guard  # autouse: every test, nothing beyond loopback
from tests.widget import ORIGIN, MakeClient

pytest_plugins = ["pytester"]  # tests/test_netguard.py runs a test that must fail


@pytest.fixture
async def fake_ocs() -> AsyncIterator[FakeOCS]:
    async with FakeOCS() as ocs:
        yield ocs


@pytest.fixture
def ocs(fake_ocs: FakeOCS) -> FakeOCS:
    """The fake OCS server, by its short name."""
    return fake_ocs


@pytest.fixture
async def bridge(tmp_path: Path, fake_ocs: FakeOCS) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """``await bridge(channel=..., bot=..., worker={...}, **settings)`` -> a started Harness with the
    recording test channel."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            channel: RecordingChannel | None = None, bot: BotSettings | None = None, **values: Any
        ) -> Harness:
            channel = channel or RecordingChannel()
            settings = make_settings(tmp_path, bot or ocs_bot(fake_ocs), {channel.name: channel}, **values)
            return await stack.enter_async_context(start_bridge(settings, [channel], ocs=fake_ocs))

        yield start


@pytest.fixture
def tg_prefix() -> str:
    """The fake Bot API's path prefix (a module overrides it: every call must keep it)."""
    return ""


@pytest.fixture
async def tg(tg_prefix: str) -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(prefix=tg_prefix) as server:
        yield server


@pytest.fixture
def tw_prefix() -> str:
    """The fake Twilio API's path prefix (a module overrides it: every call must keep it)."""
    return ""


@pytest.fixture
async def tw(tw_prefix: str) -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(prefix=tw_prefix) as server:
        yield server


@pytest.fixture
def cx_prefix() -> str:
    """The fake Open.cx API's path prefix (a module overrides it: every call must keep it)."""
    return ""


@pytest.fixture
async def cx(cx_prefix: str) -> AsyncIterator[FakeOpenCx]:
    async with FakeOpenCx(prefix=cx_prefix) as server:
        yield server


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """``await make_client(WIDGET_EMBED_KEY=...)``: the bridge with its web channel, on SQLite."""
    from adapters.web import install

    async with contextlib.AsyncExitStack() as stack:

        async def make(**env: str) -> TestClient[Any, Any]:
            environ = {
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bridge.db",
                "PUBLIC_URL": "http://bridge.test",
                "WIDGET_ALLOWED_ORIGINS": ORIGIN,
                "WIDGET_UPLOADS_DIR": str(tmp_path / "uploads"),
                "DATA_DIR": str(tmp_path / "data"),
                **env,
            }
            settings = load_settings(environ)
            running = start_bridge(settings, kinds=["web"], plugins=[install])
            return (await stack.enter_async_context(running)).client

        yield make


@pytest.fixture(scope="session")
def postgres_url() -> Any:
    """A throwaway PostgreSQL server for the whole run (started from the installed binaries)."""
    from fakes.pg import find_postgres_bin, start_postgres

    if find_postgres_bin() is None:
        pytest.fail("PostgreSQL server binaries not found: run `bash scripts/system-deps.sh` (or make test)")
    with start_postgres() as url:
        yield url


@pytest.fixture
def fresh_postgres(postgres_url: str) -> str:
    """The run's PostgreSQL database, migrated and emptied for this test."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import text

    from bridge.store.db import create_engine, migrate

    async def empty() -> None:
        await migrate(postgres_url)
        engine = create_engine(postgres_url)
        async with engine.begin() as connection:
            tables = "conversations, inbound_messages, outbound_parts, worker_heartbeats, "
            tables += "participant_data, schedules, history_cursors"
            await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
        await engine.dispose()

    with ThreadPoolExecutor(1) as pool:  # its own event loop: callers may run inside one
        pool.submit(asyncio.run, empty()).result()
    return postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated store on SQLite, then on a throwaway PostgreSQL (store tests run on both)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres")
    await migrate(url)
    engine = create_engine(url)
    yield Store(engine)
    await engine.dispose()
