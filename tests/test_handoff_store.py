"""Handoff in the store on both backends: handed-off conversations are followed however old,
found by their session, and let go of when closed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bridge.model import Person
from bridge.store import Store
from bridge.store.follow import to_read
from bridge.store.tables import ConversationRow, utcnow
from tests.test_store import store as store  # the fixture (both backends), found by pytest here


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
