"""What the widget's history poll reads from the store, on both backends: the chat in time order
(what the person wrote once answered, what was sent to them), a page at a time, and whether the
widget's "new chat" ended it."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.model import InboundMessage, Kind, Person
from bridge.store import Store, StoredMessage, StoredPart
from bridge.store.queue import Queue

PERSON = Person(key="session-1", address="session-1", platform="web")


def said(item: StoredMessage | StoredPart) -> tuple[str, str]:
    return ("user" if isinstance(item, StoredMessage) else "bot", item.text)


async def answered(store: Store, queue: Queue, text: str, *, sent: bool = True) -> None:
    """The person writes ``text`` and the bot's answer is stored (and sent, unless ``sent`` is
    False: then the conversation stays claimed, as while the worker sends)."""
    await store.accept(InboundMessage("web", text, PERSON, text=text))
    [claim] = await queue.claim(1)
    [message] = claim.messages
    parts = await queue.complete(message, [(f"echo: {text}", ())])
    assert parts is not None
    for part in parts if sent else ():
        await queue.part_sent(part, None, release_seq=claim.seq)


async def test_the_transcript_pages_through_the_chat_in_order(store: Store) -> None:
    queue = Queue(store, "w", 30)
    for text in ("one", "two"):
        await answered(store, queue, text)
    await answered(store, queue, "three", sent=False)  # its answer is not out yet
    await store.accept(InboundMessage("web", "four", PERSON, text="four"))  # not answered yet
    conversation = await store.conversation("web", PERSON.key)
    assert conversation is not None
    everything = await store.transcript(conversation.id, None, 50, datetime.now(UTC))
    assert [said(i) for i in everything] == [
        ("user", "one"),
        ("bot", "echo: one"),
        ("user", "two"),
        ("bot", "echo: two"),
        ("user", "three"),
    ]
    first = await store.transcript(conversation.id, None, 3, datetime.now(UTC))
    assert [said(i) for i in first] == [("user", "one"), ("bot", "echo: one"), ("user", "two")]
    assert isinstance(first[-1], StoredMessage)
    rest = await store.transcript(conversation.id, first[-1].received_at, 50, datetime.now(UTC))
    assert [said(i) for i in rest] == [("bot", "echo: two"), ("user", "three")]


async def test_a_poll_shows_the_chat_as_it_stood_when_it_was_asked(store: Store) -> None:
    """The widget shows a poll's messages besides what it sent and its task's answer: a poll asked
    before a message was answered (and answered while the poll was read) must not return them."""
    queue = Queue(store, "w", 30)
    await answered(store, queue, "one")
    asked = datetime.now(UTC)
    await answered(store, queue, "two")
    conversation = await store.conversation("web", PERSON.key)
    assert conversation is not None
    then = await store.transcript(conversation.id, None, 50, asked)
    assert [said(i) for i in then] == [("user", "one"), ("bot", "echo: one")]
    assert isinstance(then[-1], StoredPart)
    later = await store.transcript(conversation.id, then[-1].created_at, 50, datetime.now(UTC))
    assert [said(i) for i in later] == [("user", "two"), ("bot", "echo: two")]


async def test_new_chat_ends_a_conversation(store: Store) -> None:
    queue = Queue(store, "w", 30)
    await answered(store, queue, "hi")
    conversation = await store.conversation("web", PERSON.key)
    assert conversation is not None and not await store.ended(conversation.id)
    await store.accept(InboundMessage("web", "end:1", PERSON, kind=Kind.END))
    assert await store.ended(conversation.id)
    assert [said(i) for i in await store.transcript(conversation.id, None, 50, datetime.now(UTC))] == [
        ("user", "hi"),
        ("bot", "echo: hi"),
    ]
