"""A failure of ours in the webhook path is a 500 with its traceback (so the platform retries and
an operator sees it), never a 400 that loses the message; only a request that cannot be read is 400."""

from __future__ import annotations

import pytest
import structlog.testing

from fakes.ocs import FakeOCS
from fakes.telegram import FakeTelegram, text_update
from tests.harness import Harness, plant_accept_failure


async def test_a_failure_inside_accept_is_500_and_the_retry_is_stored_once(
    bridge: Harness,
    tg: FakeTelegram,
    ocs: FakeOCS,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plant_accept_failure(monkeypatch)
    update = text_update("Is anyone there?")
    with structlog.testing.capture_logs() as logs:
        response = await bridge.post_update(update)
    assert response.status == 500  # Telegram retries a 5xx; a 4xx would lose the message
    assert "detail" in await response.json()
    errors = [e for e in logs if e["log_level"] == "error"]
    assert errors and errors[0].get("exc_info"), "the failure is logged with its traceback"

    await bridge.deliver_update(update)  # Telegram's retry of the same update
    await bridge.deliver_update(update)  # and once more, as it may
    await tg.wait_for(lambda: tg.texts(42) == ["bot: Is anyone there?"])
    await bridge.idle()  # a second answer would have arrived by now
    assert tg.texts(42) == ["bot: Is anyone there?"]
    [session] = ocs.sessions.values()
    assert ocs.messages(session.id) == ["Is anyone there?"]  # stored once, answered once


async def test_an_unreadable_update_is_400(bridge: Harness) -> None:
    response = await bridge.post_update({"update_id": 7, "message": {"message_id": 1}})
    assert response.status == 400
    assert "detail" in await response.json()
