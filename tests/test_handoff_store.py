"""Handoff in the store on both backends: handed-off conversations are followed however old,
found by their session, and let go of when closed."""

from __future__ import annotations

from datetime import timedelta

from bridge.model import Person
from bridge.store import Store
from bridge.store.follow import to_read
from bridge.store.handoff import CLOSED, HANDOFF, forget_session, mark, with_session
from bridge.store.tables import utcnow
from tests.test_store import store as store  # the fixture (both backends), found by pytest here


async def test_handed_off_conversations_are_followed_until_their_session_changes(store: Store):
    ada = await store.open_conversation("cx", Person("ada", "ada"), state={"lang": "en"})
    bob = await store.open_conversation("cx", Person("bob", "bob"))
    await store.set_session(ada.id, "s-ada")
    await store.set_session(bob.id, "s-bob")
    later = utcnow() + timedelta(hours=1)  # neither is recent any more
    assert await to_read(store, ["cx"], [], later, 10) == []
    await mark(store, ada.id, HANDOFF, "s-ada")
    assert await to_read(store, ["cx"], [], later, 10) == [ada.id]
    assert await to_read(store, ["cx"], ["cx"], utcnow() - timedelta(hours=1), 10) == [ada.id, bob.id]
    assert await with_session(store, ["cx"], "s-ada") == [ada.id]
    assert await with_session(store, ["other"], "s-ada") == []
    await mark(store, ada.id, CLOSED, "s-ada")
    [stored] = await store.conversations_with("cx", CLOSED, "s-ada")
    assert stored.state == {"lang": "en", HANDOFF: "s-ada", CLOSED: "s-ada"}
    await forget_session(store, ada.id, "s-other")  # not its session: kept
    assert (await store.conversation("cx", "ada")).session_id == "s-ada"  # type: ignore[union-attr]
    await forget_session(store, ada.id, "s-ada")
    assert (await store.conversation("cx", "ada")).session_id is None  # type: ignore[union-attr]
    assert await to_read(store, ["cx"], [], later, 10) == []
    await store.set_session(ada.id, "s-new")  # a new session is not handed off
    assert await to_read(store, ["cx"], [], later, 10) == []
