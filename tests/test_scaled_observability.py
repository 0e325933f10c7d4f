"""The scaled layout observed: a worker process's own metrics scraped, ``/readyz`` of the web process
following the workers within seconds, and ``telegram poll`` exiting when polling cannot start."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import aiohttp
import pytest

from fakes.ocs import FakeOCS
from fakes.server import free_port
from fakes.telegram import FakeTelegram, text_update
from tests.harness import eventually
from tests.proc import BridgeProcess, migrate, post_update, relay_env


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


async def wait_status(url: str, wanted: int, timeout: float) -> float:
    """Seconds until ``url`` answers ``wanted``."""
    started = time.monotonic()
    while (await get(url))[0] != wanted:
        assert time.monotonic() - started < timeout, f"{url} never answered {wanted}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_a_worker_process_is_scraped_and_readyz_follows_its_death(fresh_postgres, tmp_path):
    async with FakeOCS() as ocs, FakeTelegram() as tg:
        env = {"DATABASE_URL": fresh_postgres, **relay_env(ocs, tg)}
        migrate(env)
        metrics_port = free_port()
        web = BridgeProcess(["serve", "--no-worker"], {**env, "PORT": str(free_port())}, tmp_path / "web.log")
        worker = BridgeProcess(
            ["worker", "--metrics-port", str(metrics_port)],
            {**env, "PORT": str(metrics_port)},  # (the test helpers find it by PORT)
            tmp_path / "worker.log",
        )
        try:
            await web.start()
            await worker.start()  # healthy: its port answers /healthz
            await wait_status(f"{web.url}/readyz", 200, 30)
            async with aiohttp.ClientSession() as http:
                await post_update(http, web.url, text_update("hello", chat_id=4242))
            await eventually(lambda: tg.texts(4242) == ["bot: hello"], 30, "the answer")

            status, scraped = await get(f"{worker.url}/metrics")
            assert status == 200
            for series in (
                'bridge_messages_relayed_total{channel="telegram"} 1.0',
                'bridge_replies_total{channel="telegram"} 1.0',
                'bridge_parts_delivered_total{channel="telegram"} 1.0',
                'bridge_bot_latency_seconds_count{channel="telegram"} 1.0',
            ):
                assert series in scraped, series
            assert (await get(f"{worker.url}/readyz"))[0] == 200
            async with (  # the worker's port serves no webhooks
                aiohttp.ClientSession() as http,
                http.post(f"{worker.url}/webhooks/telegram", json={}) as response,
            ):
                assert response.status == 404

            worker.kill()  # SIGKILL: no clean-up; the default lease is 20 s
            assert await wait_status(f"{web.url}/readyz", 503, 15) < 8
        finally:
            web.stop()
            worker.stop()


async def test_readyz_turns_503_at_once_when_the_last_worker_stops(fresh_postgres, tmp_path):
    env = {"DATABASE_URL": fresh_postgres}
    web = BridgeProcess(["serve", "--no-worker"], {**env, "PORT": str(free_port())}, tmp_path / "web.log")
    port = free_port()
    worker = BridgeProcess(
        ["worker", "--metrics-port", str(port)], {**env, "PORT": str(port)}, tmp_path / "w.log"
    )
    try:
        await web.start()
        await worker.start()
        await wait_status(f"{web.url}/readyz", 200, 30)
        await asyncio.to_thread(worker.stop)  # SIGTERM: the worker says it is gone
        assert await wait_status(f"{web.url}/readyz", 503, 15) < 1.5
    finally:
        web.stop()
        worker.stop()


# loaded by the worker process at start (``sitecustomize``): its loop fails on the first conversation
PLANTED_BUG = """
from bridge.worker import Worker

def _spawn(self, claim):
    raise RuntimeError("planted: the worker loop dies")

Worker._spawn = _spawn
"""


async def test_a_worker_whose_loop_died_exits_non_zero_and_readyz_turns_503(fresh_postgres, tmp_path):
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "sitecustomize.py").write_text(PLANTED_BUG)
    async with FakeOCS() as ocs, FakeTelegram() as tg:
        env = {"DATABASE_URL": fresh_postgres, **relay_env(ocs, tg)}
        migrate(env)
        web = BridgeProcess(["serve", "--no-worker"], {**env, "PORT": str(free_port())}, tmp_path / "web.log")
        port = free_port()
        worker = BridgeProcess(
            ["worker", "--metrics-port", str(port)],
            {**env, "PORT": str(port), "PYTHONPATH": str(planted)},
            tmp_path / "worker.log",
        )
        try:
            await web.start()
            await worker.start()
            await wait_status(f"{web.url}/readyz", 200, 30)
            async with aiohttp.ClientSession() as http:
                await post_update(http, web.url, text_update("hello", chat_id=4242))
            assert worker.process is not None
            code = await asyncio.to_thread(worker.process.wait, 30)  # a supervisor restarts it
            assert code == 1, worker.output()
            assert (await get(f"{web.url}/readyz"))[0] == 503  # its heartbeat forgotten as it died
        finally:
            web.stop()
            worker.stop()
    output = worker.log_path.read_text()
    assert "in _spawn" in output and "RuntimeError" in output  # the traceback (its text withheld)
    assert "the worker loop died; stopping" in output


async def test_telegram_poll_exits_non_zero_when_telegram_is_unreachable_at_start(tmp_path):
    async with FakeOCS() as ocs:
        nowhere = f"http://127.0.0.1:{free_port()}"
        env = {
            **relay_env(ocs, SimpleNamespace(url=nowhere)),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
            "PORT": str(free_port()),
        }
        poller = BridgeProcess(["telegram", "poll"], env, tmp_path / "poll.log")
        await poller.start(wait_healthy=False)
        try:
            assert poller.process is not None
            code = await asyncio.to_thread(poller.process.wait, 60)
        finally:
            poller.kill()
    output = poller.output()
    assert code == 1, output
    assert "Telegram polling failed; stopping" in output
    assert "Traceback" not in output


async def test_host_binds_the_server_to_one_address(tmp_path):
    port = free_port()
    env = {"HOST": "127.0.0.2", "PORT": str(port), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"}
    process = BridgeProcess(["serve"], env, tmp_path / "serve.log")
    await process.start(wait_healthy=False)
    try:
        await eventually_answers(f"http://127.0.0.2:{port}/healthz")
        with pytest.raises(aiohttp.ClientConnectorError):
            await get(f"http://127.0.0.1:{port}/healthz")
    finally:
        process.stop()


async def eventually_answers(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (await get(url))[0] == 200:
                return
        except aiohttp.ClientConnectorError:
            assert time.monotonic() < deadline, f"{url} never answered"
        await asyncio.sleep(0.1)
