"""WhatsApp outside the 24-hour window, with an approved template: it invites the person, and the
message waits for their answer, then goes out first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.typedefs import CORE
from fakes.ocs import EXPERIMENT
from fakes.twilio import FakeTwilio, status, whatsapp
from tests.harness import Harness

TEMPLATE = "HX" + "ab" * 16
WA = "whatsapp:+15551230001"
NEWCOMER = "whatsapp:+15559990002"


@pytest.fixture(autouse=True)
def template(tw: FakeTwilio) -> None:
    tw.templates[TEMPLATE] = {"1": "there"}


@pytest.fixture
def bridge_env() -> dict[str, str]:
    return {
        "BRIDGE_API_KEY": "k",
        "TWILIO_WHATSAPP_TEMPLATE_SID": TEMPLATE,
        "TWILIO_FROM_NUMBER": "+14155238886",
    }


async def trigger(bridge: Harness, identifier: str, text: str) -> None:
    body = {"identifier": identifier, "platform": "whatsapp", "experiment": EXPERIMENT, "message_text": text}
    response = await bridge.client.post("/api/trigger_bot", json=body, headers={"X-api-key": "k"})
    assert response.status == 200, await response.text()


async def test_63016_sends_the_template_and_the_held_message_follows_the_next_message_once(
    bridge: Harness, tw: FakeTwilio
) -> None:
    await bridge.deliver_form(whatsapp("hello"))
    await tw.wait_for(lambda: tw.bodies(WA) == ["bot: hello"])
    tw.outside_window.add(WA)  # a day and more passes (Twilio says so; the bridge's note may be late)
    await trigger(bridge, WA, "Your results are ready")
    await tw.wait_for(lambda: any(s.template for s in tw.sent(WA)))
    [invitation] = [s for s in tw.sent(WA) if s.template]
    assert invitation.template == TEMPLATE and invitation.variables == {"1": "Ada Lovelace"}
    assert invitation.body == "" and invitation.sender == "whatsapp:+14155238886"
    await trigger(bridge, WA, "And a second note")
    await bridge.idle()
    assert [s.template or s.body for s in tw.sent(WA)] == ["bot: hello", TEMPLATE]  # held, template once
    assert await bridge.client.app[CORE].store.dead_letters() == []
    tw.outside_window.discard(WA)
    await bridge.deliver_form(whatsapp("hi, what is it?"))
    expected = ["bot: hello", TEMPLATE, "Your results are ready", "And a second note", "bot: hi, what is it?"]
    await tw.wait_for(lambda: len(tw.sent(WA)) == len(expected))
    await bridge.idle()
    assert [s.template or s.body for s in tw.sent(WA)] == expected


async def test_no_message_for_24_hours_sends_the_template_without_trying_free_form(
    bridge: Harness, tw: FakeTwilio
) -> None:
    await bridge.deliver_form(whatsapp("hello"))
    await tw.wait_for(lambda: tw.bodies(WA) == ["bot: hello"])
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    store = bridge.client.app[CORE].store
    conversation = await store.conversation(bridge.channel.name, WA)
    assert conversation is not None  # the last message: two days ago
    await store.open_conversation(
        bridge.channel.name, conversation.person, state={"whatsapp_written_at": two_days_ago}
    )
    await trigger(bridge, WA, "We miss you")
    await tw.wait_for(lambda: len(tw.attempts(WA)) == 2)
    await bridge.idle()
    assert [(s.status, s.template) for s in tw.attempts(WA)] == [(201, ""), (201, TEMPLATE)]


async def test_a_person_who_never_wrote_gets_the_template_first(bridge: Harness, tw: FakeTwilio) -> None:
    tw.templates[TEMPLATE] = {}  # a template without variables gets none
    await trigger(bridge, NEWCOMER, "Welcome to the course")
    await tw.wait_for(lambda: len(tw.attempts(NEWCOMER)) == 1)
    await bridge.idle()
    [invitation] = tw.attempts(NEWCOMER)
    assert invitation.template == TEMPLATE and "ContentVariables" not in invitation.params
    await bridge.deliver_form(whatsapp("hello?", sender=NEWCOMER))
    await tw.wait_for(lambda: len(tw.sent(NEWCOMER)) == 3)
    assert [s.template or s.body for s in tw.sent(NEWCOMER)] == [
        TEMPLATE,
        "Welcome to the course",
        "bot: hello?",
    ]


async def test_63016_in_a_status_callback_sends_the_template_and_holds_the_message(
    bridge: Harness, tw: FakeTwilio
) -> None:
    await bridge.deliver_form(whatsapp("hello"))
    await tw.wait_for(lambda: tw.bodies(WA) == ["bot: hello"])
    await trigger(bridge, WA, "Your results are ready")  # Twilio takes it, then cannot deliver it
    await tw.wait_for(lambda: tw.bodies(WA) == ["bot: hello", "Your results are ready"])
    await bridge.report(status(tw.sent(WA)[-1].sid, "failed", error_code="63016"))
    await tw.wait_for(lambda: tw.sent(WA)[-1].template == TEMPLATE)
    await bridge.idle()
    assert len(tw.sent(WA)) == 3 and await bridge.client.app[CORE].store.dead_letters() == []
    await bridge.deliver_form(whatsapp("what results?"))
    await tw.wait_for(lambda: len(tw.sent(WA)) == 5)
    await bridge.idle()
    assert [s.template or s.body for s in tw.sent(WA)][2:] == [
        TEMPLATE,
        "Your results are ready",
        "bot: what results?",
    ]


def test_a_template_sid_that_is_not_one_is_named(tw: FakeTwilio) -> None:
    from adapters import build_channels
    from bridge.errors import ConfigError
    from bridge.settings import load_settings

    env = {"TWILIO_ACCOUNT_SID": tw.account_sid, "TWILIO_AUTH_TOKEN": tw.auth_token}
    with pytest.raises(ConfigError) as info:
        build_channels(load_settings({**env, "TWILIO_WHATSAPP_TEMPLATE_SID": "my-template"}))
    assert str(info.value).startswith("TWILIO_WHATSAPP_TEMPLATE_SID:")
