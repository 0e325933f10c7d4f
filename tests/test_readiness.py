"""/readyz tells the truth: the database unreachable or not migrated, workers alive anywhere
(heartbeats in the database); and PostgreSQL's TLS settings as managed databases hand them out."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.store.db import create_engine
from fakes.server import free_port
from tests.harness import eventually
from tests.proc import ROOT, BridgeProcess


async def new_database(postgres_url: str) -> str:
    """An empty database (never migrated) on the test server."""
    name = f"bridge_{secrets.token_hex(4)}"
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f"CREATE DATABASE {name}"))
    await admin.dispose()
    return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)


async def ready(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
        return response.status, await response.json()


def bridge_process(args: list[str], database_url: str, log: Path) -> BridgeProcess:
    env = {"DATABASE_URL": database_url, "PORT": str(free_port()), "WORKER_LEASE_SECONDS": "4"}
    return BridgeProcess(args, env, log)


async def test_readyz_is_503_until_postgresql_is_migrated_and_says_whether_workers_live(
    postgres_url, tmp_path
):
    database = await new_database(postgres_url)
    full = await bridge_process(["serve"], database, tmp_path / "serve.log").start()
    web = None
    try:
        status, body = await ready(full.url)
        assert status == 503 and "not migrated" in body["detail"] and "bridge migrate" in body["detail"]
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{full.url}/api/chat/start/", json={"chatbot_id": "web"}) as response,
        ):
            assert response.status == 503, await response.text()  # not a 500 and a traceback
            assert (await response.json())["detail"]

        migrated = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bridge", "migrate"],
            env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrated.returncode == 0, migrated.stderr
        await eventually_ready(full.url)

        # the scaled layout: an HTTP-only process is ready while a worker beats somewhere
        web = await bridge_process(["serve", "--no-worker"], database, tmp_path / "web.log").start()
        await eventually_ready(web.url)
        full.stop()
        status, body = await eventually_status(web.url, 503)
        assert "workers: none alive" in body["detail"]
    finally:
        full.stop()
        if web is not None:
            web.stop()
    assert "Traceback" not in full.output()


async def test_readyz_is_503_while_the_database_is_unreachable_with_a_short_rate_limited_log(tmp_path):
    nowhere = f"postgresql+asyncpg://bridge:secret-pw@127.0.0.1:{free_port()}/bridge"
    process = await bridge_process(["serve"], nowhere, tmp_path / "serve.log").start()
    try:
        status, body = await ready(process.url)
        assert status == 503 and body["detail"].startswith("database: unreachable")
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{process.url}/api/chat/start/", json={"chatbot_id": "web"}) as response,
        ):
            assert response.status == 503
        await asyncio.sleep(3)
    finally:
        process.stop()
    output = process.output()
    assert output.count("database not ready, retrying") == 1  # said once, not every second
    assert "Traceback" not in output and "secret-pw" not in output
    assert len(max(output.splitlines(), key=len)) < 600


async def eventually_status(url: str, wanted: int, timeout: float = 30) -> tuple[int, dict[str, Any]]:
    async def answered() -> tuple[int, dict[str, Any]] | None:
        result = await ready(url)
        return result if result[0] == wanted else None

    return await eventually(answered, timeout, f"{url}/readyz to answer {wanted}")  # type: ignore[no-any-return]


async def eventually_ready(url: str) -> None:
    await eventually_status(url, 200)


SSL_QUERIES = [("?sslmode=disable", True), ("?sslmode=prefer", True), ("?ssl=false", True)]


@pytest.mark.parametrize(("query", "works"), [*SSL_QUERIES, ("?sslmode=require", False)])
async def test_sslmode_is_given_to_the_driver(postgres_url, query, works):
    engine = create_engine(postgres_url + query)
    try:
        if works:
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT 1")) == 1
        else:  # the test server has no TLS: the driver insists on it, as asked
            with pytest.raises(Exception, match=r"(?i)ssl") as info:
                async with engine.connect():
                    pass
            assert "unexpected keyword" not in str(info.value)
    finally:
        await engine.dispose()
