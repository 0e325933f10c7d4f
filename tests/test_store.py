"""The store and queue on both backends: SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bridge.model import InboundMessage, Person
from bridge.store.queue import Queue
from bridge.store.tables import utcnow


def message(person: str, platform_id: str, text: str = "hi") -> InboundMessage:
    return InboundMessage("chan", platform_id, Person(key=person, address=person), text=text)


async def test_a_platform_retry_is_recognised(store):
    first = await store.accept(message("p", "1"))
    again = await store.accept(message("p", "1"))
    other = await store.accept(message("p", "2"))
    assert not first.duplicate and again.duplicate and not other.duplicate
    assert again.public_id == first.public_id
    assert other.conversation_id == first.conversation_id


async def test_concurrent_identical_deliveries_store_one_message(store):
    results = await asyncio.gather(*(store.accept(message("p", "same")) for _ in range(8)))
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.public_id for r in results}) == 1


def ids(claims):
    return [c.conversation.id for c in claims]


async def test_a_conversation_is_held_by_one_worker_at_a_time(store):
    for person in ("a", "b", "c"):
        await store.accept(message(person, person))
    one, two = Queue(store, "one", 30), Queue(store, "two", 30)
    claimed = [ids(c) for c in await asyncio.gather(one.claim(10), two.claim(10))]
    assert sorted(claimed[0] + claimed[1]) == sorted(set(claimed[0] + claimed[1]))
    assert len(claimed[0] + claimed[1]) == 3
    assert await one.claim(10) == [] and await two.claim(10) == []


async def test_a_claim_brings_the_pending_work_and_leases_are_renewed_in_one_go(store):
    for n in range(3):
        await store.accept(message("a", str(n), text=f"m{n}"))
    await store.accept(message("b", "b1", text="other"))
    queue = Queue(store, "w", 0.5)
    claims = {c.conversation.person.key: c for c in await queue.claim(10)}
    assert [m.text for m in claims["a"].messages] == ["m0", "m1", "m2"]
    assert [m.text for m in claims["b"].messages] == ["other"]
    for _ in range(3):  # renewed faster than the lease runs out: nobody else can claim them
        await asyncio.sleep(0.3)
        await queue.renew()
        assert await Queue(store, "other", 30).claim(10) == []


async def test_an_expired_lease_is_claimed_again(store):
    accepted = await store.accept(message("a", "1"))
    dead = Queue(store, "crashed", 0.2)
    assert ids(await dead.claim(1)) == [accepted.conversation_id]
    alive = Queue(store, "alive", 30)
    assert await alive.claim(1) == []
    await asyncio.sleep(0.3)
    assert ids(await alive.claim(1)) == [accepted.conversation_id]
    assert await dead.reload(accepted.conversation_id) is None  # the crashed owner lost it


async def test_release_keeps_a_conversation_that_got_new_work(store):
    first = await store.accept(message("a", "1", text="one"))
    queue = Queue(store, "w", 30)
    [claim] = await queue.claim(1)
    await store.accept(message("a", "2", text="two"))  # arrives while the worker looks
    assert not await queue.release(claim.conversation.id, seq=claim.seq)
    claim = await queue.reload(claim.conversation.id)
    assert [m.text for m in claim.messages] == ["one", "two"]
    assert await queue.release(claim.conversation.id, seq=claim.seq)
    assert first.conversation_id == claim.conversation.id


async def test_messages_come_out_in_arrival_order_and_backoff_holds_the_line(store):
    for n in range(3):
        await store.accept(message("a", str(n), text=f"m{n}"))
    queue = Queue(store, "w", 30)
    [claim] = await queue.claim(1)
    head = claim.messages[0]
    assert head.text == "m0"
    await queue.retry_message(head, utcnow() + timedelta(seconds=0.5), "OCS answered 503")
    assert await queue.claim(1) == []  # let go until the retry is due: later messages wait behind it
    await asyncio.sleep(0.6)
    [claim] = await queue.claim(1)
    head = claim.messages[0]
    assert head.text == "m0" and head.attempts == 1
    assert head.relayed_at is not None  # the next attempt asks the bot's history first
    assert await queue.complete(head, [("answer", ())])
    claim = await queue.reload(claim.conversation.id)
    assert [p.text for p in claim.parts] == ["answer"] and claim.messages[0].text == "m1"
    assert [p.text for p in await store.parts_of(head.id)] == ["answer"]


async def test_message_state_is_merged_into_the_conversation(store):
    first = InboundMessage("chan", "1", Person(key="a", address="a"), state={"to": "+1555"})
    accepted = await store.accept(first)
    await store.accept(InboundMessage("chan", "2", Person(key="a", address="a"), state={"lang": "fr"}))
    conversation = await store.conversation("chan", "a")
    assert conversation.id == accepted.conversation_id
    assert conversation.state == {"to": "+1555", "lang": "fr"}


async def test_a_lease_renewal_commits_before_every_write_queued_ahead_of_it(store):
    """Hundreds of webhooks and worker writes wait: the renewal is in the very next transaction,
    so only the write already under way commits before it."""
    await store.accept(message("held", "held"))
    queue = Queue(store, "w", 30)
    [claim] = await queue.claim(1)
    committed: list[str] = []
    writes = [asyncio.ensure_future(store.accept(message(f"p{n}", str(n)))) for n in range(600)]
    writes += [asyncio.ensure_future(store.set_session(claim.conversation.id, f"s{n}")) for n in range(20)]
    renewal = asyncio.ensure_future(queue.renew())
    for write in writes:
        write.add_done_callback(lambda _: committed.append("write"))
    renewal.add_done_callback(lambda _: committed.append("renewal"))
    await asyncio.gather(renewal, *writes)
    assert committed.index("renewal") <= 1
