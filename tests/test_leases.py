"""Leases as a person notices them: a bot slower than several leases still answers each message
once, whether other conversations keep the store busy, the store stalls, or another worker waits
for the lease."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from bridge.settings import BotSettings
from bridge.store.tables import ConversationRow, utcnow
from bridge.worker import Worker
from fakes.ocs import FakeOCS
from tests.harness import Harness, eventually, ocs_bot

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


async def ask_slowly(h: Harness, people: int) -> None:
    """``people`` people each ask the slow bot; once it is thinking about every question."""
    await asyncio.gather(*(h.say(f"slow{n}", f"slow {n}") for n in range(people)))
    await eventually(lambda: h.ocs.answering == people, 10, "the bot thinking")


async def answered_once(h: Harness, people: int, fast: int = 0, *others: Worker) -> None:
    """Once nothing is left running or waiting (a message answered twice would show by then):
    each slow person got their one answer, ``fast`` fast messages theirs, the bot saw each
    message once, and nothing ended as a dead letter."""
    answers = people + fast
    await eventually(lambda: len(h.channel.sent) >= answers and h.ocs.answering == 0, 4 * SLOW, "answers")
    await h.idle(others=others)
    for n in range(people):
        assert h.channel.texts_to(f"slow{n}") == [f"bot: slow {n}"]
    assert len(h.channel.sent) == answers
    turns = Counter(
        call.json["message"]
        for call in h.ocs.calls
        if call.path.endswith("incoming_message") and isinstance(call.json, dict)
    )
    assert turns == Counter({f"slow {n}": 1 for n in range(people)} | ({"hi": fast} if fast else {}))
    assert await h.core.store.dead_letters() == []


async def test_a_bot_slower_than_three_leases_answers_each_message_once_under_load(bridge, fake_ocs):
    """Twenty people wait on a bot slower than three leases while hundreds of fast messages keep
    the store busy: each gets one answer, and the bot saw each message once."""
    slow_and_fast(fake_ocs)
    h = await bridge(bot=patient(fake_ocs), worker={"lease_seconds": LEASE})
    await ask_slowly(h, 20)
    sent = 0
    while not all(h.channel.texts_to(f"slow{n}") for n in range(20)):  # loaded until they are answered
        await asyncio.gather(*(h.say(f"fast{(sent + n) % 100}", "hi") for n in range(50)))
        sent += 50
    assert sent >= 200, "the load did not last"
    await answered_once(h, 20, sent)


async def test_a_store_stalled_longer_than_a_lease_still_runs_each_conversation_once(bridge, fake_ocs):
    """The store stalls (another writer holds it) while the bot thinks, until the leases ran out:
    the worker's next claim finds its own conversations free and takes them again. Each still runs
    once: one bot turn, one answer (before, each ran a second time, which found the bot still
    answering, retried until it gave up, and sent the apology instead)."""
    slow_and_fast(fake_ocs)
    h = await bridge(bot=patient(fake_ocs), worker={"lease_seconds": LEASE})
    await ask_slowly(h, 5)
    async with h.core.store.writer.lock:  # nothing else writes until the leases ran out
        async with h.core.store.reading() as session:
            until = await session.scalar(select(func.max(ConversationRow.lease_until)))
        await eventually(lambda: utcnow() > until, 2 * LEASE, "the leases to run out")
    assert fake_ocs.answering == 5  # the bot is still thinking
    await answered_once(h, 5)


async def test_a_second_worker_never_takes_a_conversation_whose_lease_is_renewed(
    bridge, fake_ocs, monkeypatch
):
    """One worker asks the slow bot; another one, idle, polls for work all along. The renewals
    keep the conversation with the first, even while the heartbeat's other write fails: one bot
    turn, one answer (without them, the second worker takes it over after a lease, finds the bot
    still answering, and gives up with an apology)."""
    slow_and_fast(fake_ocs)
    h = await bridge(bot=patient(fake_ocs), worker={"lease_seconds": LEASE, "concurrency": 1})

    async def beat_fails(owner: str) -> None:
        raise ConnectionError("worker_heartbeats unavailable")

    monkeypatch.setattr(h.core.store, "beat", beat_fails)
    await ask_slowly(h, 1)  # the first worker asks, and takes no more work meanwhile
    second = Worker(h.core, owner="second")
    polling: asyncio.Task[Any] = asyncio.create_task(second.run())
    try:
        await eventually(lambda: second.running, 5, "the second worker")
        await answered_once(h, 1, 0, second)
    finally:
        await second.stop(1)
        await polling


async def test_a_conversation_taken_again_as_its_run_ends_is_answered(bridge):
    """A run lets go of its conversation just as the same worker's claim takes it again (one
    transaction): the claim cannot start a second run beside the first, yet once the first ends
    the conversation is not left held with nobody running it."""
    h = await bridge()
    await h.core.workers[0].stop(0)  # the worker is driven by hand here
    worker = Worker(h.core, owner="by-hand")
    await h.say("p", "hello")
    [claim] = await worker.queue.claim(10)
    ending = asyncio.Event()
    worker._start(claim.conversation.id, ending.wait())  # a run still ending
    await worker.queue.release(claim.conversation.id, run_at=utcnow())  # it let go...
    for again in await worker.queue.claim(10):  # ...and the next claim took the conversation again
        worker._spawn(again)
    assert list(worker.active) == [claim.conversation.id]
    ending.set()
    assert await h.replies("p", 1) == ["bot: hello"]
    await eventually(lambda: not worker.active, 5, "the run to end")
