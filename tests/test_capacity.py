"""Capacity as a person notices it: a slow bot never makes anyone else wait (correctness, not timing;
the figures are in ``make bench``)."""

from __future__ import annotations

import asyncio

from fakes.ocs import FakeOCS
from fakes.telegram import text_update
from tests.harness import eventually, ocs_bot, platform_bridge


async def test_nothing_caps_the_answers_in_flight_below_three_hundred(bridge, fake_ocs: FakeOCS):
    """The fake answers only once 300 requests are in flight at the same time: every one of the 300
    people is answered only if the bridge puts all of them to the bot at once (default settings)."""
    barrier = asyncio.Barrier(300)

    async def reply(text: str, session: object) -> str:
        await asyncio.wait_for(barrier.wait(), 30)
        return f"bot: {text}"

    fake_ocs.reply = reply
    h = await bridge()
    await asyncio.gather(*(h.say(f"p{n}", f"hello {n}") for n in range(300)))
    await eventually(lambda: len(h.channel.sent) == 300, 40, "300 answers")
    assert sorted(part.text for _, part in h.channel.sent) == sorted(f"bot: hello {n}" for n in range(300))
    assert fake_ocs.max_answering == 300


async def test_the_in_flight_setting_bounds_the_requests_to_the_bot(bridge, fake_ocs: FakeOCS):
    fake_ocs.latency = 0.3
    h = await bridge(bot=ocs_bot(fake_ocs, max_in_flight=20))
    await asyncio.gather(*(h.say(f"p{n}", f"hello {n}") for n in range(100)))
    await eventually(lambda: len(h.channel.sent) == 100, 30, "100 answers")
    assert fake_ocs.max_answering == 20  # reached, never passed


async def test_a_conversation_waiting_on_telegram_429_holds_up_nobody(tmp_path, tg, fake_ocs):
    """One worker slot only: the conversation that must wait 3 s lets it go, so the others are
    answered meanwhile; then it gets its answer, once."""
    tg.fail("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3, when=_to(42))
    env = {**fake_ocs.env(), "WORKER_CONCURRENCY": "1"}
    async with platform_bridge(tmp_path / "b.db", tg=tg, **env) as bridge:
        await bridge.deliver_update(text_update("first", chat_id=42))
        await tg.wait_for(lambda: any(c.status == 429 for c in tg.log), timeout=5)
        for chat in range(43, 48):
            await bridge.deliver_update(text_update(f"hi {chat}", chat_id=chat))
        await tg.wait_for(lambda: all(tg.texts(chat) for chat in range(43, 48)), timeout=2.5)
        assert tg.texts(42) == []  # still waiting out its retry_after
        await tg.wait_for(lambda: tg.texts(42) == ["bot: first"], timeout=8)
    delivered = [c for c in tg.calls("sendMessage", 42) if c.status == 200]
    assert len(delivered) == 1


def _to(chat: int):  # type: ignore[no-untyped-def]
    return lambda params: str(params.get("chat_id")) == str(chat)
