"""Proactive work with several processes on one PostgreSQL database: once, whoever does it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from fakes.ocs import FakeOCS
from fakes.server import free_port
from fakes.telegram import FakeTelegram, text_update
from tests.harness import eventually
from tests.proc import BridgeProcess, migrate, post_update, relay_env, settled

CHAT = 301


async def test_two_worker_processes_fire_a_schedule_and_deliver_an_ocs_message_once(fresh_postgres, tmp_path):
    async with FakeOCS() as ocs, FakeTelegram() as tg:
        env = {
            "DATABASE_URL": fresh_postgres,
            **relay_env(ocs, tg),
            "BRIDGE_API_KEY": "k3y",
            "PROACTIVE_POLL_SECONDS": "0.2",
            "WORKER_POLL_INTERVAL": "0.05",
        }
        migrate(env)
        web = BridgeProcess(["serve", "--no-worker"], {**env, "PORT": str(free_port())}, tmp_path / "web.log")
        workers = [
            BridgeProcess(["worker"], {**env, "PORT": str(free_port())}, tmp_path / f"worker{i}.log")
            for i in range(2)
        ]
        try:
            await web.start()
            for worker in workers:
                await worker.start(wait_healthy=False)
            for worker in workers:
                started = lambda p=worker: "worker started" in p.log_path.read_text()  # noqa: E731
                await eventually(started, 30, "the worker processes")
            async with aiohttp.ClientSession() as http:
                await post_update(http, web.url, text_update("hi", chat_id=CHAT))
                await eventually(lambda: tg.texts(CHAT) == ["bot: hi"], 30, "the first answer")
                date = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
                body = {
                    "identifier": str(CHAT),
                    "platform": "telegram",
                    "data": [
                        {"experiment": ocs.experiment_id, "schedules": [{"prompt": "Check in", "date": date}]}
                    ],
                }
                async with http.post(
                    f"{web.url}/api/participants", json=body, headers={"X-api-key": "k3y"}
                ) as r:
                    assert r.status == 200, await r.text()
            await eventually(lambda: len(tg.texts(CHAT)) == 2, 30, "the scheduled answer")
            [session] = ocs.sessions.values()
            ocs.says(session.id, "Are you still there?")
            await eventually(lambda: len(tg.texts(CHAT)) == 3, 30, "the message OCS wrote by itself")
            reads = ocs.history_reads(session.id)  # both workers keep following and firing meanwhile
            await eventually(lambda: ocs.history_reads(session.id) >= reads + 10, 30, "more history reads")
            await eventually(lambda: settled(fresh_postgres), 10, "nothing left to send")
            assert tg.texts(CHAT) == ["bot: hi", "bot: Check in", "Are you still there?"]
            assert ocs.messages(session.id) == ["hi", "Check in"]
            reads = [w.log_path.read_text().count("schedule fired") for w in workers]
            assert sum(reads) == 1, reads
        finally:
            for process in (web, *workers):
                process.stop()
