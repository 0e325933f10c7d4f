"""Leases as a person notices them: a bot slower than several leases still answers each message
once, whether other conversations keep the store busy or another worker waits for the lease."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from bridge.settings import BotSettings
from bridge.store.queue import dead_letters
from bridge.worker import Worker
from fakes.ocs import FakeOCS
from tests.conftest import Harness, eventually, ocs_bot

LEASE = 2.0  # the shortest lease the settings allow
SLOW = 3.25 * LEASE  # the slow bot's answers take longer than three leases


def slow_and_fast(ocs: FakeOCS) -> None:
    """Messages starting with "slow" take ``SLOW`` seconds to answer, the others none."""

    async def reply(text: str, session: object) -> str:
        if text.startswith("slow"):
            await asyncio.sleep(SLOW)
        return f"bot: {text}"

    ocs.reply = reply


def patient(ocs: FakeOCS) -> BotSettings:
    """The bot settings, waiting for the slow answers."""
    return ocs_bot(ocs, read_timeout=2 * SLOW)


def bot_turns(ocs: FakeOCS) -> Counter[str]:
    """How many times each message text was put to the bot."""
    return Counter(
        call.json["message"]
        for call in ocs.calls
        if call.path.endswith("incoming_message") and isinstance(call.json, dict)
    )


async def settled(h: Harness, answers: int, *others: Worker) -> None:
    """Wait until ``answers`` parts went out and nothing is left running or waiting: a message
    answered twice would show by then."""

    async def idle() -> bool:
        backlog = await h.core.store.backlog()
        return backlog.depth == 0 and not any(worker.active for worker in [*h.core.workers, *others])

    await eventually(lambda: len(h.channel.sent) >= answers and h.ocs.answering == 0, 4 * SLOW, "answers")
    deadline = asyncio.get_running_loop().time() + 10
    while not await idle():
        assert asyncio.get_running_loop().time() < deadline, "the bridge never settled"
        await asyncio.sleep(0.05)


async def test_a_bot_slower_than_three_leases_answers_each_message_once_under_load(bridge, fake_ocs):
    """Twenty people wait on a bot slower than three leases while hundreds of fast messages keep
    the store busy: each gets one answer, and the bot saw each message once."""
    slow_and_fast(fake_ocs)
    h = await bridge(bot=patient(fake_ocs), worker={"lease_seconds": LEASE})
    await asyncio.gather(*(h.say(f"slow{n}", f"slow {n}") for n in range(20)))
    slow_answered = lambda: all(h.channel.texts_to(f"slow{n}") for n in range(20))  # noqa: E731
    sent = 0
    while not slow_answered():  # the store stays loaded until every slow answer is in
        await asyncio.gather(*(h.say(f"fast{(sent + n) % 100}", "hi") for n in range(50)))
        sent += 50
    assert sent >= 200, "the load did not last"
    await settled(h, 20 + sent)
    for n in range(20):
        assert h.channel.texts_to(f"slow{n}") == [f"bot: slow {n}"]
    assert len(h.channel.sent) == 20 + sent
    assert bot_turns(fake_ocs) == Counter({"hi": sent} | {f"slow {n}": 1 for n in range(20)})
    assert await dead_letters(h.core.store) == []


async def test_a_second_worker_never_takes_a_conversation_whose_lease_is_renewed(bridge, fake_ocs):
    """One worker asks the slow bot; another one, idle, polls for work all along. The renewals
    keep the conversation with the first: one bot turn, one answer (without them, the second
    worker takes it over after a lease and asks the bot again, or gives up with an apology)."""
    slow_and_fast(fake_ocs)
    h = await bridge(
        bot=patient(fake_ocs), worker={"lease_seconds": LEASE, "concurrency": 1}
    )  # the first takes no more
    await h.say("p", "slow question")
    await eventually(lambda: fake_ocs.answering == 1, 10, "the first worker asking the bot")
    second = Worker(h.core, owner="second")
    polling: asyncio.Task[Any] = asyncio.create_task(second.run())
    try:
        await eventually(lambda: second.running, 5, "the second worker")
        await settled(h, 1, second)
    finally:
        await second.stop(1)
        await polling
    assert h.channel.texts_to("p") == ["bot: slow question"]
    assert bot_turns(fake_ocs) == Counter({"slow question": 1})
    assert await dead_letters(h.core.store) == []
