"""The open.cx backend through the real app, real SQLite and workers, and the fake open.cx."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bridge.settings import BotSettings
from fakes.opencx import CxSession, FakeOpenCx
from tests.harness import Harness, eventually

SECRET = "cx-events-secret"
FAST = {"proactive_poll_seconds": 0.2}
HANDOFF = "A person from our team will answer you here shortly."


@pytest.fixture
def cx_prefix() -> str:
    return "/cx-proxy"  # a path prefix: every call must keep it


def cx_bot(cx: FakeOpenCx, **overrides: Any) -> BotSettings:
    values = {"backend": "opencx", "base_url": cx.url, "api_key": cx.api_key, "read_timeout": 5}
    return BotSettings(**(values | {"webhook_secret": SECRET} | overrides))


async def chatting(h: Harness, cx: FakeOpenCx, who: str = "ada") -> CxSession:
    await h.say(who, "hi", name=who.title())
    await h.replies(who, 1)
    [session] = [s for s in cx.sessions.values() if s.custom_data["user_id"] == who]
    return session


async def read_again(h: Harness, cx: FakeOpenCx, session_id: str) -> None:
    """Until the follower read the session's history a few more times and delivered what it found."""
    reads = cx.history_reads.get(session_id, 0)
    await eventually(lambda: cx.history_reads.get(session_id, 0) >= reads + 3, what="more history reads")
    await h.idle()


async def event(h: Harness, name: str, session_id: str, **how: Any) -> int:
    body = {"event": name, "organization_id": "org-1", "data": {"conversation_id": session_id}}
    response = await h.client.post("/bot-events/default", params={"secret": SECRET}, json=body, **how)
    return response.status


@pytest.mark.parametrize("wrapped", [False, True])
async def test_one_session_per_conversation_answers_in_order(bridge, cx: FakeOpenCx, wrapped: bool):
    cx.wrapped = wrapped
    h = await bridge(bot=cx_bot(cx))
    for n in range(3):
        await h.say("ada", f"a{n}", name="Ada")
        await h.say("bob", f"b{n}", name="Bob")
    assert await h.replies("ada", 3) == ["ai: a0", "ai: a1", "ai: a2"]
    assert await h.replies("bob", 3) == ["ai: b0", "ai: b1", "ai: b2"]
    assert len(cx.sessions) == 2
    by_person = {s.custom_data["user_id"]: s for s in cx.sessions.values()}
    assert cx.received(by_person["ada"].id) == ["a0", "a1", "a2"]
    assert by_person["bob"].contact == {"name": "Bob"}  # no phone number on this platform
    assert by_person["ada"].custom_data == {"platform": "test", "channel": "test", "user_id": "ada"}
    assert all(a is not None for _m, path, a in cx.calls if path.endswith("/send"))


async def test_a_ui_answer_is_appended_as_text(bridge, cx: FakeOpenCx):
    cx.ui = "Track your order: https://shop.example.org/track"
    h = await bridge(bot=cx_bot(cx))
    await h.say("ada", "where is my parcel")
    assert await h.replies("ada", 1) == [f"ai: where is my parcel\n\n{cx.ui}"]


async def test_an_ai_error_is_an_apology_and_a_dead_letter(bridge, cx: FakeOpenCx):
    h = await bridge(bot=cx_bot(cx))
    await h.say("ada", "please explode")
    [apology] = await h.replies("ada", 1)
    assert apology.startswith("Sorry, something went wrong") and "error occurred" not in apology
    [letter] = await h.core.store.dead_letters()
    assert "value.error" in letter.reason
    await h.say("ada", "fine then")
    assert (await h.replies("ada", 2))[1] == "ai: fine then"


async def test_handoff_notice_once_and_agent_replies_by_webhook_once_in_order(bridge, cx: FakeOpenCx):
    h = await bridge(bot=cx_bot(cx), proactive_poll_seconds=30)  # reads by the events, not the clock
    session = await chatting(h, cx)
    await h.say("ada", "I want a human")
    assert await h.replies("ada", 2) == ["ai: hi", HANDOFF]
    await h.say("ada", "are you there?")  # still reaches open.cx (the agent sees it), no answer
    await eventually(lambda: cx.received(session.id)[-1:] == ["are you there?"], what="sent to open.cx")
    started = time.monotonic()
    cx.agent_says(session.id, "Hi Ada, Sam here.")
    cx.agent_says(session.id, "How can I help?")
    assert await event(h, "conversation.agent_response", session.id) == 200
    await h.replies("ada", 4)
    assert time.monotonic() - started < 5  # at once, not at the next 30-second read
    assert await event(h, "conversation.agent_response", session.id) == 200  # the same event again
    cx.agent_says(session.id, "Your refund is on its way.")
    assert await event(h, "conversation.agent_response", session.id) == 200
    await h.replies("ada", 5)
    await h.idle()
    assert h.channel.texts_to("ada") == [
        "ai: hi",
        HANDOFF,
        "Hi Ada, Sam here.",
        "How can I help?",
        "Your refund is on its way.",
    ]
    await h.say("ada", "thanks")
    await eventually(lambda: cx.received(session.id)[-1:] == ["thanks"], what="sent to open.cx")
    await h.idle()
    assert h.channel.texts_to("ada")[-1] == "Your refund is on its way."  # no second notice
    assert len(cx.sessions) == 1


async def test_agent_replies_arrive_by_the_history_alone_with_events_off(bridge, cx: FakeOpenCx):
    cx.page_size = 2  # several pages to follow
    h = await bridge(bot=cx_bot(cx, webhook_secret=None), **FAST)
    session = await chatting(h, cx)
    await h.say("ada", "human please")
    await h.replies("ada", 2)
    for n in range(5):
        cx.agent_says(session.id, f"agent {n}")
    await h.replies("ada", 7, timeout=15)
    await read_again(h, cx, session.id)  # more reads: nothing again
    assert h.channel.texts_to("ada")[2:] == [f"agent {n}" for n in range(5)]
    assert await event(h, "conversation.agent_response", session.id) == 404  # events are off


async def test_conversations_not_handed_off_have_no_history_read(bridge, cx: FakeOpenCx):
    h = await bridge(bot=cx_bot(cx), **FAST)
    session = await chatting(h, cx)
    await h.follower_rounds()  # a whole round read what it follows since she was answered
    assert cx.history_reads.get(session.id, 0) == 0


@pytest.mark.parametrize(
    ("how", "status"),
    [
        ({"params": {}}, 401),
        ({"params": {"secret": "wrong"}}, 403),
        ({"params": {}, "headers": {"X-Webhook-Secret": "wrong"}}, 403),
        ({"params": {}, "headers": {"X-Webhook-Secret": SECRET}}, 200),
        ({"params": {"secret": SECRET}, "data": b"{not json"}, 400),
        ({"params": {"secret": SECRET}, "data": b"[1, 2]"}, 400),
        ({"params": {"secret": SECRET}, "data": b"\xff\xfe"}, 400),
        (
            {
                "params": {"secret": SECRET},
                "data": b'{"event": "conversation.closed", "data": {"conversation_id": "a\\u0000b"}}',
            },
            200,
        ),
        ({"params": {"secret": SECRET}, "data": b'{"event": "conversation.closed", "data": []}'}, 200),
    ],
)
async def test_the_webhook_checks_its_secret_and_its_body(bridge, cx: FakeOpenCx, how, status):
    h = await bridge(bot=cx_bot(cx))
    body = how.pop("data", None)
    kwargs = {"data": body} if body is not None else {"json": {"event": "conversation.ai_response"}}
    response = await h.client.post("/bot-events/default", **how, **kwargs)
    assert response.status == status
    assert (await response.json()) == {"ok": True} if status == 200 else "detail" in await response.json()


async def test_closed_by_event_then_the_next_message_opens_a_new_session(bridge, cx: FakeOpenCx):
    h = await bridge(bot=cx_bot(cx), **FAST)
    session = await chatting(h, cx)
    await h.say("ada", "a human, please")
    await h.replies("ada", 2)
    cx.agent_says(session.id, "Solved, bye!")
    cx.close(session.id)
    assert await event(h, "conversation.closed", session.id) == 200
    assert await event(h, "conversation.closed", session.id) == 200  # twice: no harm
    assert (await h.replies("ada", 3))[2] == "Solved, bye!"  # read before the session is let go
    await h.say("ada", "one more question")
    assert (await h.replies("ada", 4))[3] == "ai: one more question"
    assert len(cx.sessions) == 2


async def test_closed_in_the_history_then_a_new_session(bridge, cx: FakeOpenCx):
    h = await bridge(bot=cx_bot(cx, webhook_secret=None), **FAST)
    session = await chatting(h, cx)
    await h.say("ada", "human")
    await h.replies("ada", 2)
    cx.agent_says(session.id, "Done.")
    cx.close(session.id)
    await h.replies("ada", 3)

    async def let_go() -> bool:  # the follower lets the closed session go
        conversation = await h.core.store.conversation("test", "ada")
        return conversation is not None and conversation.session_id is None

    await eventually(let_go, what="the closed session to be let go")
    await h.say("ada", "hello again")
    assert (await h.replies("ada", 4))[3] == "ai: hello again"
    assert len(cx.sessions) == 2


async def test_reset_opens_a_new_session(bridge, cx: FakeOpenCx):
    h = await bridge(bot=cx_bot(cx))
    await chatting(h, cx)
    await h.say("ada", "/reset")
    assert (await h.replies("ada", 2))[1].startswith("Your conversation has been reset")
    await h.say("ada", "new topic")
    assert (await h.replies("ada", 3))[2] == "ai: new topic"
    assert len(cx.sessions) == 2


async def test_a_429_is_waited_out_and_order_kept(bridge, cx: FakeOpenCx):
    h = await bridge(bot=cx_bot(cx))
    await chatting(h, cx)
    cx.fail_next(429, on="/send")
    started = time.monotonic()
    await h.say("ada", "first")
    await h.say("ada", "second")
    assert await h.replies("ada", 3) == ["ai: hi", "ai: first", "ai: second"]
    assert time.monotonic() - started >= cx.retry_after  # Retry-After honoured
    [session] = cx.sessions.values()
    assert cx.received(session.id) == ["hi", "first", "second"]


async def test_a_timed_out_message_that_reached_open_cx_is_not_sent_twice(bridge, cx: FakeOpenCx):
    h = await bridge(bot=cx_bot(cx, read_timeout=0.5))
    session = await chatting(h, cx)
    cx.slow_next(1.5)
    await h.say("ada", "a slow question")
    await h.say("ada", "and another")
    assert await h.replies("ada", 3) == ["ai: hi", "ai: a slow question", "ai: and another"]
    assert cx.received(session.id) == ["hi", "a slow question", "and another"]


async def test_an_agent_taking_over_in_the_inbox_is_followed_from_its_event(bridge, cx: FakeOpenCx):
    h = await bridge(bot=cx_bot(cx), proactive_poll_seconds=30)
    session = await chatting(h, cx)
    cx.hand_off(session.id)  # an agent took the conversation in open.cx, no message said so
    cx.agent_says(session.id, "Hi, I'm taking over.")
    # out of order: the reply's event first, then the handoff's; the reply is delivered once
    assert await event(h, "conversation.agent_response", session.id) == 200
    assert await event(h, "conversation.handoff_to_human", session.id) == 200
    assert await h.replies("ada", 2) == ["ai: hi", "Hi, I'm taking over."]
    await h.idle()
    assert h.channel.texts_to("ada") == ["ai: hi", "Hi, I'm taking over."]
    await h.say("ada", "ok")  # now handed off: sent, no AI answer expected
    await eventually(lambda: cx.received(session.id)[-1:] == ["ok"], what="sent to open.cx")
    await h.idle()
    assert h.channel.texts_to("ada") == ["ai: hi", "Hi, I'm taking over."]


async def test_the_rate_limit_of_open_cx_is_waited_out_in_order(bridge, cx: FakeOpenCx):
    cx.rate_limit, cx.rate_window = 3, 1.0  # (scaled down: 3 a second)
    h = await bridge(bot=cx_bot(cx))
    for n in range(4):
        await h.say("ada", f"a{n}")
        await h.say("bob", f"b{n}")
    assert await h.replies("ada", 4, timeout=20) == [f"ai: a{n}" for n in range(4)]
    assert await h.replies("bob", 4, timeout=20) == [f"ai: b{n}" for n in range(4)]
    sends = [c for c in cx.calls if c[1].endswith("/send")]
    assert len(sends) > 8  # some were refused with 429 and sent again
    assert sorted(len(cx.received(s.id)) for s in cx.sessions.values()) == [4, 4]  # none twice


async def test_a_bot_that_sends_no_events_answers_404(bridge):
    h = await bridge()  # the OCS bot
    assert await event(h, "conversation.closed", "s-1") == 404
