"""A failure of ours in Twilio's webhook path is a 500 with its traceback (so Twilio retries and an
operator sees it), never a 400 that loses the message."""

from __future__ import annotations

import pytest
import structlog.testing

from fakes.ocs import FakeOCS
from fakes.twilio import FakeTwilio, sms
from tests.harness import Harness, plant_accept_failure

PERSON = "+15551230001"


async def test_a_failure_inside_accept_is_500_and_the_retry_is_stored_once(
    bridge: Harness,
    tw: FakeTwilio,
    ocs: FakeOCS,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plant_accept_failure(monkeypatch)
    form = sms("Is anyone there?", sender=PERSON)
    with structlog.testing.capture_logs() as logs:
        response = await bridge.post_form(form)  # signed like Twilio
    assert response.status == 500  # Twilio retries a 5xx; a 4xx would lose the message
    assert "detail" in await response.json()
    errors = [e for e in logs if e["log_level"] == "error"]
    assert errors and errors[0].get("exc_info"), "the failure is logged with its traceback"

    await bridge.deliver_form(form)  # Twilio's retry of the same message (same MessageSid)
    await bridge.deliver_form(form)  # and once more, as it may
    await tw.wait_for(lambda: tw.bodies(PERSON) == ["bot: Is anyone there?"])
    await bridge.idle()  # a second answer would have arrived by now
    assert tw.bodies(PERSON) == ["bot: Is anyone there?"]
    [session] = ocs.sessions.values()
    assert ocs.messages(session.id) == ["Is anyone there?"]  # stored once, answered once
