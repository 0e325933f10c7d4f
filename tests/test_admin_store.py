"""The operator's reads, erase and retention (and the dead letters it emptied) on both backends
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, func, insert, select, update

from bridge.model import InboundMessage, Person
from bridge.store import Store
from bridge.store import admin as records
from bridge.store.letters import Revived
from bridge.store.tables import ConversationRow, MessageRow, PartRow, utcnow


async def answered(store: Store, person: str, text: str) -> int:
    """A message from ``person``, done, answered with one delivered part; the conversation id."""
    message = InboundMessage("chan", f"{person}:{text}", Person(key=person, address=person), text=text)
    accepted = await store.accept(message)
    now = utcnow()

    def answer(connection: Connection) -> None:
        connection.execute(
            update(MessageRow).where(MessageRow.id == accepted.message_id).values(status="done")
        )
        connection.execute(
            insert(PartRow).values(
                conversation_id=accepted.conversation_id,
                message_id=accepted.message_id,
                text=f"re: {text}",
                status="sent",
                created_at=now,
                next_attempt_at=now,
                sent_at=now,
            )
        )

    await store.writer(answer)
    return accepted.conversation_id


async def test_counts_transcript_erase_and_retention(store):
    ann = await answered(store, "ann", "old")
    bob = await answered(store, "bob", "hello")
    ago = utcnow() - timedelta(days=3)
    await store.writer(
        lambda c: (
            c.execute(update(MessageRow).where(MessageRow.conversation_id == ann).values(received_at=ago)),
            c.execute(
                update(PartRow).where(PartRow.conversation_id == ann).values(created_at=ago, sent_at=ago)
            ),
        )
    )

    [counts] = await records.counts(store)
    assert (counts.channel, counts.received_hour, counts.received_day, counts.delivered_day) == (
        "chan",
        1,
        1,
        1,
    )
    entries = await records.transcript(store, bob)
    assert [(e.sender, e.text) for e in entries] == [("person", "hello"), ("bot", "re: hello")]
    assert entries[1].detail.startswith("delivered ")

    cursor, passed = await store.expire_texts(utcnow() - timedelta(days=1), records.RetentionCursor())
    assert passed == 2
    assert await store.expire_texts(utcnow() - timedelta(days=1), cursor) == (cursor, 0)
    assert [e.text for e in await records.transcript(store, ann)] == ["", ""]
    assert [e.text for e in await records.transcript(store, bob)] == ["hello", "re: hello"]

    erased = await store.erase(ann)
    assert erased is not None and erased.person_key == "ann"
    async with store.reading() as db:
        assert await db.scalar(select(func.count()).select_from(ConversationRow)) == 1
        assert await db.scalar(select(func.count()).where(MessageRow.conversation_id == ann)) == 0
        assert await db.scalar(select(func.count()).where(PartRow.conversation_id == ann)) == 0
    assert [c.person_key for c in await records.conversations(store)] == ["bob"]


async def test_erase_and_retention_remove_the_chat_api_session_tokens(store):
    """A session token is a key to the person's OCS session: gone with the person, and with a
    conversation idle longer than RETAIN_DAYS (or a session left behind), kept while it is in use."""
    ann, bob, cat = [await answered(store, who, "hi") for who in ("ann", "bob", "cat")]
    ago, now = utcnow() - timedelta(days=3), utcnow()
    for conversation_id, session in ((ann, "s-ann"), (bob, "s-bob"), (cat, "s-cat")):
        await store.set_session(conversation_id, session)
    for session, started in (("s-ann", ago), ("s-bob", ago), ("s-cat", ago), ("s-left", ago), ("s-new", now)):
        await store.keep_token(session, f"token-{session}", started)
    await store.writer(
        lambda c: c.execute(
            update(ConversationRow).where(ConversationRow.id == ann).values(last_activity_at=ago)
        )
    )

    await store.erase(cat)
    assert await store.session_token("s-cat") is None
    assert await store.expire_tokens(utcnow() - timedelta(days=1)) == 2
    assert await store.session_token("s-ann") is None  # idle for three days
    assert await store.session_token("s-left") is None  # no conversation is in it any more
    assert await store.session_token("s-bob") == ("token-s-bob", ago)  # bob wrote today
    assert await store.session_token("s-new") is not None  # just started, its conversation not set yet


async def test_a_dead_letter_whose_text_retention_removed_is_marked_and_not_revived(store):
    """An empty text alone does not tell: a photo without a caption has none either."""

    async def dead(person: str, text: str, received_at) -> str:
        message = InboundMessage("chan", f"{person}:{text}", Person(key=person, address=person), text=text)
        accepted = await store.accept(message)
        await store.writer(
            lambda c: c.execute(
                update(MessageRow)
                .where(MessageRow.id == accepted.message_id)
                .values(status="dead", error="OCS answered 500", received_at=received_at)
            )
        )
        return f"in-{accepted.message_id}"

    old = await dead("ann", "my old question", utcnow() - timedelta(days=3))
    photo = await dead("bob", "", utcnow() - timedelta(hours=1))
    fresh = await dead("cat", "a fresh question", utcnow())
    await store.expire_texts(utcnow() - timedelta(days=2), records.RetentionCursor())

    texts = {d.ref: d.text for d in await records.dead_letters(store)}
    assert texts == {old: "(removed by retention)", photo: "", fresh: "a fresh question"}
    assert [d.expired for d in await store.dead_letters()] == [True, False, False]
    assert await store.revive(old) is Revived.EXPIRED
    assert await store.revive(photo) is Revived.QUEUED
    assert await store.revive(fresh) is Revived.QUEUED
    assert await store.revive(fresh) is Revived.MISSING  # queued already: no longer a dead letter
    assert [d.ref for d in await store.dead_letters()] == [old]
