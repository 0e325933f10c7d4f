"""What broke against a real OCS (commit a77c545), reproduced against the fake made faithful to
its recordings, and shown fixed: OCS's messages once, ended sessions ended, apologies as
failures, the pinned version checked, and the bridge's own trigger_bot and participants."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.bots import BotError, OcsBot
from bridge.settings import BotSettings, Texts
from bridge.store.letters import Revived
from fakes.ocs import ERROR_REPLY, EXPERIMENT, FakeOCS
from fakes.ocs_records import FakeSession
from fakes.telegram import FakeTelegram
from tests.harness import Harness, eventually, ocs_bot
from tests.telegram.test_telegram_ops import bridge_cli
from tests.widget import MakeClient, start

FAST = {"proactive_poll_seconds": 0.1}
APOLOGY = Texts().apology


async def chatting(h: Harness, text: str = "hi") -> FakeSession:
    """Ada has written once and been answered: her OCS session."""
    await h.say("ada", text)
    await h.replies("ada", 1)
    [session] = h.ocs.sessions.values()
    return session


async def more_reads(h: Harness, session: FakeSession, count: int = 3) -> None:
    """Until the follower has read the session's history ``count`` more times."""
    reads = h.ocs.history_reads(session.id)
    await eventually(lambda: h.ocs.history_reads(session.id) >= reads + count, what="more history reads")


@contextlib.asynccontextmanager
async def started(settings: BotSettings) -> AsyncIterator[OcsBot]:
    """An OCS bot client on the fake, started and stopped around the block."""
    bot = OcsBot(settings)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


# 1. OCS's messages by identity, once --------------------------------------------------------------
async def test_a_summary_inserted_by_compression_delivers_nothing_again(bridge):
    h = await bridge(**FAST)
    session = await chatting(h)
    h.ocs.says(session.id, "Are you still there?")
    await h.replies("ada", 2)
    h.ocs.summarise(session.id)  # a system entry before the last message: positions shift by one
    await h.say("ada", "yes")
    await h.replies("ada", 3)
    h.ocs.summarise(session.id)  # now between the user turn and its answer
    await more_reads(h, session)
    assert h.channel.texts_to("ada") == ["bot: hi", "Are you still there?", "bot: yes"]
    h.ocs.says(session.id, "Reminder: exam at 9")
    assert (await h.replies("ada", 4))[3] == "Reminder: exam at 9"
    await more_reads(h, session)
    assert len(h.channel.texts_to("ada")) == 4


async def test_the_history_never_delivers_system_or_user_entries(ocs: FakeOCS):
    async with started(ocs_bot(ocs)) as bot:
        session = ocs.new_session()
        ocs.says(session.id, "Hello from OCS")
        ocs.summarise(session.id, "A summary")
        first = await bot.history(session.id, None)
        again = await bot.history(session.id, first.cursor)
    assert [m.text for m in first.messages] == ["Hello from OCS"] and again.messages == []


# 2. Ended means ended -----------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["pending-review", "complete"])
async def test_a_session_ocs_ended_is_noticed_by_the_follower_and_the_goodbye_delivered(bridge, status):
    h = await bridge(**FAST)
    session = await chatting(h)
    h.ocs.end(session.id, goodbye="Goodbye, this chat is closed", status=status)
    assert (await h.replies("ada", 2))[1] == "Goodbye, this chat is closed"

    async def forgotten() -> bool:  # the follower forgets the session: the next message opens a new one
        conversation = await h.core.store.conversation("test", "ada")
        return conversation is not None and conversation.session_id is None

    await eventually(forgotten, what="the follower to forget the ended session")
    await h.say("ada", "hello again")
    assert (await h.replies("ada", 3))[2] == "bot: hello again"
    assert h.ocs.messages(session.id) == ["hi"]  # never written to again
    [new] = [s for s in h.ocs.sessions.values() if s.id != session.id]
    assert h.ocs.messages(new.id) == ["hello again"]


async def test_an_end_not_yet_read_is_noticed_before_the_next_message_and_the_goodbye_goes_first(bridge):
    h = await bridge(proactive_poll_seconds=0)  # no follower: only the look before relaying
    session = await chatting(h)
    h.ocs.says(session.id, "Unread reminder")  # before her next turn: not part of the end
    await h.say("ada", "second")
    await h.replies("ada", 2)
    h.ocs.end(session.id, goodbye="Goodbye")
    await h.say("ada", "one more thing")
    assert await h.replies("ada", 4) == ["bot: hi", "bot: second", "Goodbye", "bot: one more thing"]
    assert h.ocs.messages(session.id) == ["hi", "second"] and session.status == "pending-review"
    assert len(h.ocs.sessions) == 2


async def test_the_fake_reopens_an_ended_session_as_ocs_does(ocs: FakeOCS):
    async with started(ocs_bot(ocs)) as bot:
        session = ocs.new_session()
        await bot.end_session(session.id)
        assert session.status == "pending-review"
        assert (await bot.send(session.id, "after end")).text == "bot: after end"
        assert session.status == "active"


# 3. Apologies are failures ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["config", "runtime"])
async def test_ocs_apology_is_one_apology_and_a_dead_letter_replayed_once_fixed(bridge, kind):
    h = await bridge()
    h.ocs.pipeline_error = kind
    await h.say("ada", "hello")
    assert await h.replies("ada", 1) == [APOLOGY]  # the bridge's own apology, once; not OCS's text
    [letter] = await h.core.store.dead_letters()  # stored with the apology
    assert ("apology" if kind == "config" else "500") in letter.reason
    h.ocs.pipeline_error = None  # the bot is fixed
    assert await h.core.store.revive(letter.ref) is Revived.QUEUED
    h.core.wake()
    assert await h.replies("ada", 2) == [APOLOGY, "bot: hello"]
    assert ERROR_REPLY not in h.channel.texts_to("ada")


# 4. check: the pinned version ---------------------------------------------------------------------
async def test_check_refuses_a_version_the_experiment_does_not_have(ocs: FakeOCS):
    for version, works in ((99, False), (1, True), (2, True)):  # 2: the working version
        async with started(ocs_bot(ocs, version=version)) as bot:
            if works:
                assert "can write" in await bot.check()
            else:
                with pytest.raises(BotError, match="no version 99"):
                    await bot.check()


# 6. every bridged person is one OCS participant --------------------------------------------------
async def test_people_get_sessions_of_their_own_but_share_the_keys_participant(bridge):
    h = await bridge()
    await h.say("ada", "hi")
    await h.say("bob", "hello")
    await h.replies("ada", 1)
    await h.replies("bob", 1)
    creates = [c for c in h.ocs.calls if c.method == "POST" and c.path == "/api/sessions/"]
    assert len(creates) == 2 and all("participant" not in c.json for c in creates)  # OCS would 500
    assert {s.owner for s in h.ocs.sessions.values()} == {"admin@example.com"}
    async with started(ocs_bot(h.ocs)) as bot:
        assert "same OCS participant" in await bot.check()  # the limit, made visible


async def test_a_session_created_for_another_participant_fails_as_ocs_does(ocs: FakeOCS):
    async with started(ocs_bot(ocs)) as bot:
        session = ocs.new_session()
        session.owner, session.impersonates = "someone-else", True
        with pytest.raises(BotError, match="500: Exception"):
            await bot.send(session.id, "hi")


async def test_a_cursor_written_as_a_position_before_the_upgrade_skips_what_was_read(ocs: FakeOCS):
    async with started(ocs_bot(ocs)) as bot:
        session = ocs.new_session()
        ocs.says(session.id, "delivered before the upgrade")
        ocs.says(session.id, "new")
        history = await bot.history(session.id, "1")
    assert [m.text for m in history.messages] == ["new"]


# 7. the bridge's own trigger_bot and participants -------------------------------------------------
async def test_trigger_bot_finds_a_widget_person_by_the_identifier_start_answered(make_client: MakeClient):
    client = await make_client(BRIDGE_API_KEY="k3y")
    started = await start(client)  # with a participant_remote_id
    identifier = started["participant"]["identifier"]
    trigger = {"identifier": identifier, "platform": "web", "experiment": "default", "message_text": "Hi"}
    response = await client.post("/api/trigger_bot", json=trigger, headers={"X-api-key": "k3y"})
    assert response.status == 200, await response.text()


async def test_a_schedule_with_an_id_not_seen_is_created_with_that_id(bridge):
    h = await bridge(bridge_api_key="k3y")
    await chatting(h)
    schedule = {"id": "from-elsewhere-1", "name": "check-in", "prompt": "Ask", "date": "2030-01-01T10:00:00Z"}
    body = {
        "identifier": "ada",
        "platform": "test",
        "data": [{"experiment": EXPERIMENT, "schedules": [schedule]}],
    }
    headers = {"X-api-key": "k3y"}
    response = await h.client.post("/api/participants", json=body, headers=headers)
    assert response.status == 200, await response.text()
    listed = await (await h.client.get("/api/participants?identifier=ada", headers=headers)).json()
    [entry] = listed["results"][0]["data"]
    assert [(s["id"], s["prompt"]) for s in entry["schedules"]] == [("from-elsewhere-1", "Ask")]


# 8. small ones ------------------------------------------------------------------------------------
async def test_check_with_telegram_closes_its_client(tg: FakeTelegram, tmp_path: Path):
    _, output = await bridge_cli(tg, tmp_path, "check")
    assert "Telegram bot @" in output and "Unclosed" not in output, output  # client session, connector


async def test_the_widget_start_names_the_bot_not_the_channel(make_client: MakeClient, fake_ocs):
    started = await start(await make_client())
    assert started["chatbot"]["name"] == "default"  # the echo bot: its name in the settings
    client = await make_client(**fake_ocs.env())
    started = await start(client, fake_ocs.experiment_id)
    assert started["chatbot"]["name"] == "Fake bot"  # as OCS names the experiment
