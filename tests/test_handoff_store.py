"""Handoff in the store on both backends: handed-off conversations are followed however old,
found by their session, and let go of when closed."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from alembic import command
from sqlalchemy import select, text

from bridge.model import InboundMessage, Person
from bridge.store import Store, db
from bridge.store.db import create_engine
from bridge.store.follow import to_read
from bridge.store.queue import Queue
from bridge.store.tables import ConversationRow, utcnow


async def marks(store: Store, conversation_id: int) -> tuple[str | None, str | None]:
    c = ConversationRow
    async with store.reading() as session:
        row = (
            await session.execute(select(c.handoff_session, c.closed_session).where(c.id == conversation_id))
        ).one()
        return row.handoff_session, row.closed_session


async def test_handed_off_conversations_are_followed_until_their_session_changes(store: Store):
    ada = await store.open_conversation("cx", Person("ada", "ada"), state={"lang": "en"})
    bob = await store.open_conversation("cx", Person("bob", "bob"))
    await store.set_session(ada.id, "s-ada")
    await store.set_session(bob.id, "s-bob")
    later = utcnow() + timedelta(hours=1)  # neither is recent any more
    assert await to_read(store, ["cx"], [], later, 10) == []
    assert await store.mark_sessions(["other"], handed_off=["s-ada"], closed=[]) == []  # another bot's
    assert await store.mark_sessions(["cx"], handed_off=["s-ada"], closed=[]) == [ada.id]
    assert await to_read(store, ["cx"], [], later, 10) == [ada.id]
    assert await to_read(store, ["cx"], ["cx"], utcnow() - timedelta(hours=1), 10) == [ada.id, bob.id]
    assert await store.mark_sessions(["cx"], handed_off=[], closed=["s-ada"]) == [ada.id]
    assert await marks(store, ada.id) == ("s-ada", "s-ada")
    assert (await store.conversation("cx", "ada")).state == {"lang": "en"}  # type: ignore[union-attr]
    await store.forget_session(ada.id, "s-other")  # not its session: kept
    assert (await store.conversation("cx", "ada")).session_id == "s-ada"  # type: ignore[union-attr]
    await store.forget_session(ada.id, "s-ada")
    assert (await store.conversation("cx", "ada")).session_id is None  # type: ignore[union-attr]
    assert await to_read(store, ["cx"], [], later, 10) == []
    await store.set_session(ada.id, "s-new")  # a new session is not handed off
    assert await to_read(store, ["cx"], [], later, 10) == []


async def test_a_handoff_is_stored_with_the_answer_only_by_the_worker_holding_the_lease(store: Store):
    accepted = await store.accept(InboundMessage("cx", "m1", Person("ada", "ada")))
    await store.set_session(accepted.conversation_id, "s-ada")
    holder, other = Queue(store, "holder", 30), Queue(store, "other", 30)
    [claim] = await holder.claim(1)
    [message] = claim.messages
    assert claim.handoff_session is None
    assert await other.complete(message, [("late", ())], handed_off="s-ada") is None  # lost the lease
    assert await marks(store, claim.conversation.id) == (None, None)
    assert await holder.complete(message, [("handed off", ())], handed_off="s-ada") is not None
    assert await marks(store, claim.conversation.id) == ("s-ada", None)


async def test_the_migration_moves_handoff_and_closed_out_of_the_state_and_back(store: Store):
    ada = await store.open_conversation("cx", Person("ada", "ada"), state={"lang": "en"})
    await store.set_session(ada.id, "s-ada")
    await store.mark_sessions(["cx"], handed_off=["s-ada"], closed=["s-ada"])
    url = store.engine.url.render_as_string(hide_password=False)
    await store.close()
    await store.engine.dispose()
    config = db._alembic_config(url)
    try:
        await asyncio.to_thread(command.downgrade, config, "0006")  # (a release that kept them in the state)
        engine = create_engine(url)
        async with engine.connect() as connection:
            state = (await connection.execute(text("SELECT state FROM conversations"))).scalar_one()
        await engine.dispose()
        kept = json.loads(state) if isinstance(state, str) else state
        assert kept == {"lang": "en", "handoff": "s-ada", "closed": "s-ada"}
    finally:
        await asyncio.to_thread(command.upgrade, config, "head")
    upgraded = Store(create_engine(url))
    try:
        assert await marks(upgraded, ada.id) == ("s-ada", "s-ada")
        assert (await upgraded.conversation("cx", "ada")).state == {"lang": "en"}  # type: ignore[union-attr]
    finally:
        await upgraded.engine.dispose()
