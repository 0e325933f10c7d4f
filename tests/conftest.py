"""Shared fixtures: the fake OCS server, a bridge app with a recording channel, waiting helpers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.channel import Channel
from bridge.core import Core
from bridge.settings import BotSettings, ChannelSettings, Settings, WorkerSettings
from bridge.typedefs import CORE
from bridge.web import create_app
from fakes.channel import SECRET, RecordingChannel
from fakes.ocs import FakeOCS

FAST_WORKER = {
    "poll_interval": 0.05,
    "retry_base": 0.05,
    "retry_max": 0.2,
    "lease_seconds": 5,
    "shutdown_grace": 1,
}


async def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Wait until ``check()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def fake_ocs() -> AsyncIterator[FakeOCS]:
    async with FakeOCS() as ocs:
        yield ocs


@pytest.fixture
def ocs(fake_ocs: FakeOCS) -> FakeOCS:
    """The fake OCS server, by its short name."""
    return fake_ocs


def ocs_bot(ocs: FakeOCS, **overrides: Any) -> BotSettings:
    values: dict[str, Any] = {
        "backend": "ocs",
        "base_url": ocs.url,
        "api_key": ocs.api_key,
        "experiment_id": ocs.experiment_id,
        "read_timeout": 5,
    }
    return BotSettings(**(values | overrides))


def make_settings(tmp_path: Path, bot: BotSettings, channels: dict[str, Channel], **values: Any) -> Settings:
    worker = FAST_WORKER | values.pop("worker", {})
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}",
        bots={"default": bot},
        channels={name: ChannelSettings(type=c.kind) for name, c in channels.items()},
        worker=WorkerSettings(**worker),
        **values,
    )


@dataclass
class Harness:
    """A running bridge (real HTTP app, real SQLite) with a recording channel and the fake OCS."""

    client: TestClient[Any, Any]
    channel: RecordingChannel
    ocs: FakeOCS

    @property
    def core(self) -> Core:
        return self.client.app[CORE]  # type: ignore[index]

    async def say(self, sender: str, text: str, *, id: str | None = None, **extra: Any) -> int:
        """Post one message to the test channel's webhook; the HTTP status."""
        self._n = getattr(self, "_n", 0) + 1
        body = {"id": id or f"u{self._n}", "from": sender, "text": text, **extra}
        response = await self.client.post(
            f"/webhooks/{self.channel.name}", data=json.dumps(body), headers={"X-Test-Secret": SECRET}
        )
        return response.status

    async def replies(self, sender: str, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until ``sender`` got ``count`` parts; return all their texts."""
        await eventually(
            lambda: len(self.channel.texts_to(sender)) >= count, timeout, f"{count} replies to {sender}"
        )
        return self.channel.texts_to(sender)


@pytest.fixture
async def bridge(tmp_path: Path, fake_ocs: FakeOCS) -> AsyncIterator[Callable[..., Any]]:
    """``await bridge(channel=..., bot=..., worker={...}, **settings)`` -> a started Harness."""
    clients: list[TestClient[Any, Any]] = []

    async def start(
        channel: RecordingChannel | None = None, bot: BotSettings | None = None, **values: Any
    ) -> Harness:
        channel = channel or RecordingChannel()
        settings = make_settings(tmp_path, bot or ocs_bot(fake_ocs), {channel.name: channel}, **values)
        app: web.Application = create_app(settings, {channel.name: channel})
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return Harness(client, channel, fake_ocs)

    yield start
    for client in clients:
        await client.close()


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
