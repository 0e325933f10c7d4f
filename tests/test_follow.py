"""Messages OCS writes by itself into a session (timeout triggers, reminders) reach the person."""

from __future__ import annotations

import pytest
import structlog.testing

from bridge.core import Core
from bridge.errors import ConfigError
from bridge.settings import load_settings
from bridge.typedefs import CORE
from fakes.channel import RecordingChannel
from fakes.ocs import FakeOCS
from fakes.ocs_records import FakeSession
from tests.harness import Harness, eventually, idle
from tests.widget import MakeClient, answer, send, start

FAST = {"proactive_poll_seconds": 0.1}


async def read_again(ocs: FakeOCS, core: Core, session_id: str) -> None:
    """Until the follower read the session's history a few more times and delivered what it found."""
    reads = ocs.history_reads(session_id)
    await eventually(lambda: ocs.history_reads(session_id) >= reads + 3, what="more history reads")
    await idle(core)


async def chatting(h: Harness) -> FakeSession:
    """Ada has written once and been answered: her OCS session."""
    await h.say("ada", "hi")
    await h.replies("ada", 1)
    [session] = h.ocs.sessions.values()
    return session


async def test_a_message_ocs_wrote_by_itself_is_delivered_once_and_two_in_order(bridge):
    h = await bridge(**FAST)
    session = await chatting(h)
    h.ocs.says(session.id, "Are you still there?")
    assert await h.replies("ada", 2) == ["bot: hi", "Are you still there?"]
    h.ocs.says(session.id, "Reminder: exam at 9")
    h.ocs.says(session.id, "Bring a pencil", files=[("map.png", b"\x89PNG")])
    await h.replies("ada", 4)
    await read_again(h.ocs, h.core, session.id)  # nothing is delivered again
    assert h.channel.texts_to("ada") == [
        "bot: hi",
        "Are you still there?",
        "Reminder: exam at 9",
        "Bring a pencil\n\n[map.png](" + session.messages[-1].attachments[0]["content_url"] + ")",
    ]
    assert h.ocs.history_reads(session.id) > 3


async def test_nothing_is_repeated_or_skipped_across_a_restart(bridge):
    first = await bridge(**FAST)
    session = await chatting(first)
    first.ocs.says(session.id, "Reminder one")
    await first.replies("ada", 2)
    await first.client.close()
    first.ocs.says(session.id, "Reminder two")  # while no bridge runs
    second = await bridge(channel=RecordingChannel(), **FAST)
    assert await second.replies("ada", 1) == ["Reminder two"]
    await read_again(second.ocs, second.core, session.id)
    assert second.channel.texts_to("ada") == ["Reminder two"]


async def test_no_history_request_while_the_conversation_waits_for_the_bot(bridge):
    h = await bridge(**FAST)
    session = await chatting(h)
    await eventually(lambda: h.ocs.history_reads(session.id) > 0, what="a first read")
    h.ocs.latency = 1.5
    await h.say("ada", "a hard question")
    await eventually(lambda: len(h.ocs.messages(session.id)) == 2, what="the question at OCS")
    await h.follower_rounds()  # a read already under way when it arrived has ended
    reads = h.ocs.history_reads(session.id)
    await h.follower_rounds()
    assert h.ocs.history_reads(session.id) == reads
    assert await h.replies("ada", 2) == ["bot: hi", "bot: a hard question"]
    await eventually(lambda: h.ocs.history_reads(session.id) > reads, what="reads again after the answer")
    assert h.channel.texts_to("ada") == ["bot: hi", "bot: a hard question"]


async def test_a_throttled_read_backs_off_and_loses_nothing(bridge):
    h = await bridge(**FAST)
    session = await chatting(h)
    h.ocs.fail_next(429, times=2, on=f"/api/sessions/{session.id}/")
    h.ocs.says(session.id, "Still there?")
    assert await h.replies("ada", 2, timeout=15) == ["bot: hi", "Still there?"]


async def test_the_widget_shows_them_on_its_history_poll(make_client: MakeClient, fake_ocs) -> None:
    client = await make_client(**fake_ocs.env(), PROACTIVE_POLL_SECONDS="0.1")
    sid = (await start(client, chatbot_id=fake_ocs.experiment_id))["session_id"]
    first = await answer(client, sid, await send(client, sid, "hi"))
    [session] = fake_ocs.sessions.values()
    fake_ocs.says(session.id, "Time for a break?")
    since = first["message"]["created_at"]

    async def polled() -> list[str]:
        body = await (await client.get(f"/api/chat/{sid}/poll/", params={"since": since})).json()
        return [m["content"] for m in body["messages"]]

    assert await eventually(polled, what="the message on the poll") == ["Time for a break?"]
    await read_again(fake_ocs, client.app[CORE], session.id)
    assert await polled() == ["Time for a break?"]


async def test_proactive_poll_seconds_0_turns_the_follower_off(bridge):
    with structlog.testing.capture_logs() as logs:
        h = await bridge(proactive_poll_seconds=0)
        session = await chatting(h)
        h.ocs.says(session.id, "Are you still there?")
        # the operator is told the follower is off: it ended without a round, so no read comes later
        await eventually(
            lambda: [e for e in logs if e["event"].startswith("follower: off")], what="the follower off"
        )
    await h.idle()
    assert h.ocs.history_reads() == 0 and h.channel.texts_to("ada") == ["bot: hi"]


@pytest.mark.parametrize("name", ["PROACTIVE_POLL_SECONDS", "PROACTIVE_WINDOW_HOURS"])
def test_a_bad_proactive_setting_is_named(name):
    with pytest.raises(ConfigError) as info:
        load_settings({name: "-1"})
    assert str(info.value).startswith(f"{name}:")
    assert load_settings({name: "5"}).model_dump()[name.lower()] == 5
