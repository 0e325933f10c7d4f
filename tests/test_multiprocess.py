"""Several bridge processes sharing one PostgreSQL database: work shared, once each, order kept."""

from __future__ import annotations

import aiohttp
import pytest

from fakes.ocs import FakeOCS
from fakes.server import free_port
from fakes.telegram import FakeTelegram, text_update
from tests.harness import eventually
from tests.proc import BridgeProcess, migrate, post_update, relay_env, settled

CHATS = range(201, 209)
PER_CHAT = 5


LAYOUTS = {
    # two full processes, each taking webhooks and doing the work
    "serve+serve": [["serve"], ["serve"]],
    # the scaled deployment: one HTTP-only process, two worker processes
    "web+2 workers": [["serve", "--no-worker"], ["worker"], ["worker"]],
}


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_processes_share_the_work_on_postgresql(fresh_postgres, tmp_path, layout):
    async with FakeOCS() as ocs, FakeTelegram() as tg:
        ocs.latency = 0.2
        env = {
            "DATABASE_URL": fresh_postgres,
            **relay_env(ocs, tg),
            "WORKER_CONCURRENCY": "3",
        }
        migrate(env)
        processes = [
            BridgeProcess(args, {**env, "PORT": str(free_port())}, tmp_path / f"bridge{i}.log")
            for i, args in enumerate(LAYOUTS[layout])
        ]
        web = [p for p in processes if p.args[0] == "serve"]
        workers = [p for p in processes if p.args != ["serve", "--no-worker"]]
        try:
            for process in processes:
                await process.start(wait_healthy=process in web)
            for process in workers:
                if process not in web:  # (a serve process is healthy only once its workers run)
                    started = lambda p=process: "worker started" in p.log_path.read_text()  # noqa: E731
                    await eventually(started, 30, "the worker processes")
            update_id = 9000
            async with aiohttp.ClientSession() as http:
                for n in range(PER_CHAT):
                    for chat in CHATS:
                        update_id += 1
                        update = text_update(f"m{n}", chat_id=chat) | {"update_id": update_id}
                        for process in web:  # each update reaches every web process: stored once
                            await post_update(http, process.url, update)
            for chat in CHATS:
                await eventually(
                    lambda chat=chat: len(tg.texts(chat)) >= PER_CHAT, 60, f"answers in chat {chat}"
                )
            await eventually(lambda: settled(fresh_postgres), 10, "nothing left to send")
            for chat in CHATS:
                assert tg.texts(chat) == [f"bot: m{n}" for n in range(PER_CHAT)]
            assert sum(len(ocs.messages(s)) for s in ocs.sessions) == len(CHATS) * PER_CHAT
            answered = [p.log_path.read_text().count('"message answered"') for p in workers]
            assert all(count > 0 for count in answered), f"work was not shared: {answered}"
        finally:
            for process in processes:
                process.stop()
