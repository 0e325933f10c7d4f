"""End to end through the real HTTP app, real SQLite, the fake OCS server and a recording channel."""

from __future__ import annotations

import asyncio
import dataclasses

from bridge.channel import SendError, Unreachable
from bridge.store.letters import Revived
from fakes.channel import RecordingChannel
from fakes.ocs import EXPERIMENT
from tests.harness import eventually, ocs_bot


def incoming(ocs) -> list:  # the messages OCS received through the API channel
    return [c for c in ocs.calls if c.path.endswith("/incoming_message")]


def created_sessions(ocs) -> list:
    return [c for c in ocs.calls if c.method == "POST" and c.path.endswith("/api/sessions/")]


async def test_round_trip_creates_one_session_per_conversation(bridge):
    h = await bridge()
    assert await h.say("alice", "hello", name="Alice") == 200
    assert await h.replies("alice", 1) == ["bot: hello"]
    assert await h.say("alice", "again") == 200
    assert await h.replies("alice", 2) == ["bot: hello", "bot: again"]

    [create] = created_sessions(h.ocs)
    assert "participant" not in create.json
    assert create.json["experiment"] == h.ocs.experiment_id
    assert create.json["state"]["user_id"] == "alice"
    assert create.json["state"]["user_name"] == "Alice"
    [session] = h.ocs.sessions.values()
    assert [c.json["session"] for c in incoming(h.ocs)] == [session.id, session.id]
    assert h.ocs.messages(session.id) == ["hello", "again"]


async def test_two_conversations_interleaved_keep_their_own_order(bridge):
    h = await bridge()
    h.ocs.latency = 0.05
    for i in range(4):
        await h.say("ann", f"a{i}")
        await h.say("bob", f"b{i}")
    assert await h.replies("ann", 4) == [f"bot: a{i}" for i in range(4)]
    assert await h.replies("bob", 4) == [f"bot: b{i}" for i in range(4)]
    assert len(h.ocs.sessions) == 2


async def test_conversations_proceed_in_parallel(bridge):
    h = await bridge()
    h.ocs.latency = 1.0
    started = asyncio.get_running_loop().time()
    for person in ("p1", "p2", "p3", "p4"):
        await h.say(person, "hi")
    for person in ("p1", "p2", "p3", "p4"):
        await h.replies(person, 1)
    # four one-second answers, one at a time, would take four seconds
    assert asyncio.get_running_loop().time() - started < 3


async def test_platform_retry_of_the_same_message_is_answered_once(bridge):
    h = await bridge()
    h.ocs.latency = 0.2
    assert await h.say("carol", "hi", id="update-7") == 200
    assert await h.say("carol", "hi", id="update-7") == 200
    await h.replies("carol", 1)
    await h.idle()
    assert h.channel.texts_to("carol") == ["bot: hi"]
    assert len(incoming(h.ocs)) == 1


async def test_503_then_success_gives_exactly_one_answer(bridge):
    h = await bridge()
    h.ocs.fail_next(503)
    await h.say("dan", "hello")
    assert await h.replies("dan", 1) == ["bot: hello"]
    await h.idle()
    assert h.channel.texts_to("dan") == ["bot: hello"]
    [session] = h.ocs.sessions.values()
    assert h.ocs.messages(session.id) == ["hello"]


async def test_connection_drop_and_timeout_are_retried(bridge, fake_ocs):
    h = await bridge(bot=ocs_bot(fake_ocs, read_timeout=0.5))
    h.ocs.fail_next("drop")
    await h.say("erin", "one")
    assert await h.replies("erin", 1) == ["bot: one"]
    h.ocs.fail_next("timeout")
    await h.say("erin", "two")
    assert await h.replies("erin", 2) == ["bot: one", "bot: two"]


async def test_a_timed_out_turn_is_recovered_from_ocs_not_sent_twice(bridge, fake_ocs):
    h = await bridge(bot=ocs_bot(fake_ocs, read_timeout=0.5), worker={"max_attempts": 30})
    fake_ocs.latency = 1.0  # OCS takes the turn, answers after the bridge stopped waiting
    await h.say("vic", "slow question")
    assert await h.replies("vic", 1) == ["bot: slow question"]
    [session] = fake_ocs.sessions.values()
    assert fake_ocs.messages(session.id) == ["slow question"]  # one turn in OCS, not two
    assert len(incoming(fake_ocs)) == 1


async def test_500_gives_one_apology_and_a_dead_letter_that_can_be_retried(bridge):
    h = await bridge()
    h.ocs.fail_next(500)
    await h.say("fay", "hello")
    [apology] = await h.replies("fay", 1)
    assert "Sorry" in apology
    await h.idle()
    assert len(incoming(h.ocs)) == 1  # not retried blindly: OCS may have stored the turn
    [letter] = await h.core.store.dead_letters()
    assert letter.ref.startswith("in-") and "500" in letter.reason

    assert await h.core.store.revive(letter.ref) is Revived.QUEUED
    h.core.wake()
    assert (await h.replies("fay", 2))[1] == "bot: hello"
    assert await h.core.store.dead_letters() == []


async def test_reset_ends_the_ocs_session_and_the_next_message_opens_a_new_one(bridge):
    h = await bridge()
    await h.say("gus", "hello")
    await h.replies("gus", 1)
    [first] = h.ocs.sessions.values()
    await h.say("gus", "/reset")
    texts = await h.replies("gus", 2)
    assert "reset" in texts[1].lower()
    assert first.ended
    await h.say("gus", "hi again")
    await h.replies("gus", 3)
    assert len(h.ocs.sessions) == 2
    second = next(s for s in h.ocs.sessions.values() if s.id != first.id)
    assert h.ocs.messages(second.id) == ["hi again"]
    assert "/reset" not in h.ocs.messages(first.id)


async def test_session_gone_upstream_opens_a_new_session_once(bridge):
    h = await bridge()
    await h.say("hal", "one")
    await h.replies("hal", 1)
    [first] = h.ocs.sessions.values()
    first.ended = True  # ended in OCS by someone else: 404 from now on
    await h.say("hal", "two")
    assert (await h.replies("hal", 2))[1] == "bot: two"
    assert len(h.ocs.sessions) == 2


async def test_versioned_route_and_unknown_version(bridge, fake_ocs):
    h = await bridge(bot=ocs_bot(fake_ocs, version=2))
    await h.say("ivy", "hi")
    await h.replies("ivy", 1)
    assert incoming(fake_ocs)[0].path == f"/channels/api/{fake_ocs.experiment_id}/v2/incoming_message"


async def test_unknown_version_becomes_a_dead_letter(bridge, fake_ocs):
    h = await bridge(bot=ocs_bot(fake_ocs, version=99))
    await h.say("jo", "hi")
    assert "Sorry" in (await h.replies("jo", 1))[0]
    assert len(await h.core.store.dead_letters()) == 1


async def test_long_answer_is_split_in_order_and_attachments_become_links(bridge):
    sentences = [f"Sentence number {i} is here." for i in range(40)]
    h = await bridge(channel=RecordingChannel(max_text=100))
    h.ocs.reply = lambda text, session: (" ".join(sentences), [("report.pdf", b"%PDF-1.4")])
    await h.say("kim", "long please")
    await eventually(lambda: "report.pdf" in " ".join(h.channel.texts_to("kim")), what="the attachment link")
    parts = h.channel.texts_to("kim")
    assert all(len(p) <= 100 for p in parts)
    assert " ".join(parts).startswith(" ".join(sentences))
    assert all(p.endswith(".") for p in parts[:-2])  # cut at sentence ends
    assert parts[-1].endswith("\n\n[report.pdf](" + h.ocs.url + "/files/1/report.pdf)")


async def test_unsupported_message_is_answered_without_calling_the_bot(bridge):
    h = await bridge(channel=RecordingChannel(texts={"unsupported": "I only read text."}))
    await h.say("lee", "", kind="unsupported", what="sticker")
    assert await h.replies("lee", 1) == ["I only read text."]
    assert incoming(h.ocs) == []


async def test_wrong_secret_and_malformed_input_store_nothing(bridge):
    h = await bridge()
    response = await h.client.post("/webhooks/test", data=b'{"id": 1, "from": "x", "text": "hi"}')
    assert response.status == 403
    assert (await response.json())["detail"]
    response = await h.client.post("/webhooks/test", data=b"{nope", headers={"X-Test-Secret": "s3cret"})
    assert response.status == 400
    assert (await h.client.post("/webhooks/elsewhere", data=b"{}")).status == 404
    big = b"x" * (2 * 1024 * 1024)
    response = await h.client.post("/webhooks/test", data=big, headers={"X-Test-Secret": "s3cret"})
    assert response.status == 413
    assert "detail" in await response.json()
    await h.idle()
    assert h.ocs.calls == [] and h.channel.sent == []


async def test_send_failures_retry_in_order_and_unreachable_person_is_not_sent_to(bridge):
    h = await bridge()
    h.channel.failures = [SendError("busy", retry_after=0.2)]
    await h.say("max", "one")
    await h.say("max", "two")
    assert await h.replies("max", 2) == ["bot: one", "bot: two"]

    h.channel.failures = [Unreachable("blocked by the user")]
    await h.say("max", "three")
    await eventually(lambda: h.channel.failures == [], what="the blocked send")
    await h.idle(settled=True)  # not to be tried again
    assert h.channel.texts_to("max") == ["bot: one", "bot: two"]
    conversation = await h.core.store.conversation("test", "max")
    assert conversation is not None


async def test_trigger_bot_delivers_message_text_as_is(bridge):
    h = await bridge(bridge_api_key="k3y")
    body = {
        "identifier": "nia",
        "platform": "test",
        "experiment": EXPERIMENT,
        "message_text": "Reminder: *today*",
    }
    assert (await h.client.post("/api/trigger_bot", json=body)).status == 401
    assert (await h.client.post("/api/trigger_bot", json=body, headers={"X-api-key": "wrong"})).status == 403
    response = await h.client.post("/api/trigger_bot", json=body, headers={"X-api-key": "k3y"})
    assert response.status == 200
    assert await h.replies("nia", 1) == ["Reminder: *today*"]
    assert incoming(h.ocs) == []


async def test_health_readiness_and_metrics(bridge):
    h = await bridge()
    assert (await h.client.get("/healthz")).status == 200
    ready = await h.client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    await h.say("ola", "hi")
    await h.replies("ola", 1)
    text = await (await h.client.get("/metrics")).text()
    assert 'bridge_messages_received_total{channel="test"} 1.0' in text
    assert 'bridge_parts_delivered_total{channel="test"} 1.0' in text
    assert "bridge_bot_latency_seconds_bucket" in text


async def test_echo_bot(bridge):
    from bridge.settings import BotSettings

    h = await bridge(bot=BotSettings(backend="echo"))
    await h.say("pam", "ping")
    assert await h.replies("pam", 1) == ["echo: ping"]


async def test_start_greets_with_the_default_welcome(bridge):
    h = await bridge()
    await h.say("quin", "", kind="start")
    [welcome] = await h.replies("quin", 1)
    assert welcome.startswith("Hello!")
    assert len(h.ocs.sessions) == 1


async def test_a_bug_while_answering_ends_as_a_dead_letter_not_a_loop(bridge):
    from bridge.bots import EchoBot

    class Exploding(EchoBot):
        async def send(self, session_id, text, files=()):
            raise RuntimeError("boom")

    h = await bridge(worker={"max_attempts": 2})
    h.core.bots["default"] = Exploding()
    await h.say("rae", "hello")
    [apology] = await h.replies("rae", 1)
    assert "Sorry" in apology
    [letter] = await h.core.store.dead_letters()
    assert "RuntimeError" in letter.reason


async def test_unstorable_input_is_cleaned_or_refused(bridge):
    h = await bridge()
    await h.say("sam", "a\x00b\ud800c")
    assert await h.replies("sam", 1) == ["bot: ab?c"]
    assert await h.say("x" * 300, "hi") == 400
    assert await h.say("tom", "hi", id="y" * 300) == 400


async def test_deeply_nested_json_is_a_400(bridge):
    h = await bridge(bridge_api_key="k3y")
    body = "[" * 100_000 + "]" * 100_000
    response = await h.client.post(
        "/api/trigger_bot", data=body, headers={"X-api-key": "k3y", "Content-Type": "application/json"}
    )
    assert response.status == 400


async def test_trigger_bot_cannot_start_a_conversation_where_the_platform_forbids_it(bridge):
    channel = RecordingChannel()
    channel.capabilities = dataclasses.replace(channel.capabilities, reach_new=False)
    h = await bridge(channel=channel, bridge_api_key="k3y")
    body = {"identifier": "nobody", "platform": "test", "experiment": "e", "message_text": "hi"}
    response = await h.client.post("/api/trigger_bot", json=body, headers={"X-api-key": "k3y"})
    assert response.status == 404


async def test_an_idle_session_expires_and_the_next_message_opens_a_new_one(bridge):
    h = await bridge(worker={"session_idle_timeout": 0.5})
    await h.say("uma", "first")
    await h.replies("uma", 1)
    await h.say("uma", "soon after")
    await h.replies("uma", 2)
    assert len(h.ocs.sessions) == 1
    await asyncio.sleep(0.8)
    await h.say("uma", "much later")
    await h.replies("uma", 3)
    old, new = sorted(h.ocs.sessions.values(), key=lambda s: s.created_at)
    assert old.ended and h.ocs.messages(new.id) == ["much later"]
