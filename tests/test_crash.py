"""Crash safety: a `bridge serve` killed with SIGKILL mid-answer loses nothing and repeats nothing."""

from __future__ import annotations

import asyncio

import aiohttp

from fakes.ocs import FakeOCS
from fakes.telegram import FakeTelegram, text_update
from tests.harness import eventually
from tests.proc import BridgeProcess, killable_env, post_update, settled

CHATS = (101, 102, 103, 104)
PER_CHAT = 3


async def post_updates(url: str) -> None:
    update_id = 5000
    async with aiohttp.ClientSession() as http:
        for n in range(PER_CHAT):
            for chat in CHATS:
                update_id += 1
                await post_update(http, url, text_update(f"m{n}", chat_id=chat) | {"update_id": update_id})


async def test_sigkill_while_ocs_is_slow(tmp_path):
    async with FakeOCS() as ocs, FakeTelegram() as tg:
        ocs.latency = 1.0
        env = killable_env(tmp_path, ocs, tg)
        first = await BridgeProcess(["serve"], env, tmp_path / "bridge.log").start()
        try:
            await post_updates(first.url)
            # kill while some answers went out and the next ones are still with the slow bot
            await eventually(lambda: len(tg.texts()) >= 2, 20, "the first answers")
            await asyncio.sleep(ocs.latency / 2)
            first.kill()
        finally:
            first.kill()
        sent_before_crash = len(tg.texts())
        assert sent_before_crash < len(CHATS) * PER_CHAT, "the crash came too late to prove anything"

        second = await BridgeProcess(["serve"], env, tmp_path / "bridge.log").start()
        try:
            expected = [f"bot: m{n}" for n in range(PER_CHAT)]
            for chat in CHATS:
                await eventually(
                    lambda chat=chat: len(tg.texts(chat)) >= PER_CHAT, 30, f"answers in chat {chat}"
                )
            await eventually(lambda: settled(env["DATABASE_URL"]), 10, "nothing left to send")
            for chat in CHATS:
                assert tg.texts(chat) == expected, second.output()
            # and OCS took each turn once: answers in flight at the crash were recovered, not resent
            turns = sorted(ocs.messages(s) for s in ocs.sessions)
            assert turns == [[f"m{n}" for n in range(PER_CHAT)]] * len(CHATS)
        finally:
            second.stop()
