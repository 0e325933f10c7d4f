"""``message_text`` reaches a person on each platform, through its real adapter (the widget's case is
in ``test_widget_api.py``: it sees the message on its history poll, once)."""

from __future__ import annotations

import pytest

from fakes.ocs import EXPERIMENT, FakeOCS
from fakes.telegram import FakeTelegram
from fakes.twilio import FakeTwilio
from tests.harness import platform_bridge


def trigger(identifier: str, platform: str, **more: str) -> dict[str, str]:
    return {"identifier": identifier, "platform": platform, "experiment": EXPERIMENT, **more}


async def test_message_text_to_a_telegram_person(tmp_path, ocs: FakeOCS) -> None:
    async with (
        FakeTelegram() as tg,
        platform_bridge(tmp_path / "b.db", tg=tg, **ocs.env(), BRIDGE_API_KEY="k") as bridge,
    ):
        body = trigger("4242", "telegram", message_text="Class moved to room 5")
        response = await bridge.client.post("/api/trigger_bot", json=body, headers={"X-api-key": "k"})
        assert response.status == 200, await response.text()
        await tg.wait_for(lambda: tg.texts(4242) == ["Class moved to room 5"])
        assert (await response.json())["session_id"] in ocs.sessions


@pytest.mark.parametrize(
    ("platform", "identifier", "to", "sender"),
    [
        ("sms", "+15557770001", "+15557770001", "+15550001111"),
        ("whatsapp", "+15557770002", "whatsapp:+15557770002", "whatsapp:+15550001111"),
    ],
)
async def test_message_text_to_an_sms_or_whatsapp_person(
    tmp_path, ocs, platform, identifier, to, sender
) -> None:
    env = {**ocs.env(), "BRIDGE_API_KEY": "k", "TWILIO_FROM_NUMBER": "+15550001111"}
    async with FakeTwilio() as tw, platform_bridge(tmp_path / "b.db", tw=tw, **env) as bridge:
        body = trigger(identifier, platform, message_text="Your parcel is ready")
        response = await bridge.client.post("/api/trigger_bot", json=body, headers={"X-api-key": "k"})
        assert response.status == 200, await response.text()
        assert (await response.json())["channel"] == platform
        await tw.wait_for(lambda: tw.bodies(to) == ["Your parcel is ready"])
        assert tw.sent(to)[0].sender == sender
