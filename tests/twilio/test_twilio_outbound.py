"""Twilio outbound and delivery reports: errors, retries, dead letters, senders, status callbacks, check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.channel import SendError
from bridge.core import Core
from bridge.store.tables import ConversationRow, PartRow
from bridge.typedefs import CORE
from fakes.ocs import EXPERIMENT, FakeOCS
from fakes.ocs_records import Attachment
from fakes.twilio import (
    AUTH_TOKEN,
    FakeTwilio,
    Rule,
    Unsigned,
    sms,
    status,
    whatsapp,
)
from tests.harness import Harness, eventually, platform_bridge

PERSON = "+15551230001"
WA_PERSON = "whatsapp:+15551230001"


def core(bridge: Harness) -> Core:
    return bridge.client.app[CORE]


async def dead_reasons(bridge: Harness) -> list[str]:
    return [letter.reason for letter in await core(bridge).store.dead_letters()]


async def delivery_status(bridge: Harness, sid: str) -> str | None:
    async with core(bridge).store.reading() as session:
        return await session.scalar(select(PartRow.delivery_status).where(PartRow.platform_message_id == sid))


async def stored_sid(bridge: Harness, sid: str) -> bool:
    async with core(bridge).store.reading() as session:
        return await session.scalar(select(PartRow.id).where(PartRow.platform_message_id == sid)) is not None


async def trigger(bridge: Harness, identifier: str, text: str = "Reminder!", status: int = 200) -> None:
    body = {"identifier": identifier, "platform": "twilio", "experiment": EXPERIMENT, "message_text": text}
    response = await bridge.client.post("/api/trigger_bot", json=body, headers={"X-api-key": "k"})
    assert response.status == status, await response.text()


async def blocked(bridge: Harness) -> bool:
    """The person is noted as unreachable (a moment after Twilio refused a send)."""
    async with bridge.client.app[CORE].store.reading() as session:
        return bool(await session.scalar(select(ConversationRow.blocked)))


# send errors --------------------------------------------------------------------------------------
async def test_opted_out_on_send_is_not_sent_again(bridge: Harness, tw: FakeTwilio) -> None:
    tw.opt_out(PERSON)  # STOP reached Twilio but not the bridge
    await bridge.deliver_form(sms("hi"))
    await tw.wait_for(lambda: len(tw.attempts(PERSON)) == 1)
    await eventually(lambda: blocked(bridge))
    await trigger(bridge, PERSON, status=400)  # blocked: refused at once
    await bridge.idle(settled=True)
    assert [a.status for a in tw.attempts(PERSON)] == [400]  # the 21610 itself, nothing after it


async def test_whatsapp_outside_the_24_hour_window_is_a_dead_letter(bridge: Harness, tw: FakeTwilio) -> None:
    tw.fail(63016, to=WA_PERSON, times=None)
    await bridge.deliver_form(whatsapp("hello after two days"))
    await eventually(lambda: dead_reasons(bridge))
    [reason] = await dead_reasons(bridge)
    assert "24-hour window" in reason and "template" in reason and "63016" in reason
    assert len(tw.attempts(WA_PERSON)) == 1  # final: not retried


@pytest.mark.parametrize("code", [20429, 20500])
async def test_throttled_or_server_error_is_retried_once_sent(
    bridge: Harness, tw: FakeTwilio, code: int
) -> None:
    tw.fail(code, times=2)
    await bridge.deliver_form(sms("busy?"))
    await tw.wait_for(lambda: tw.bodies(PERSON) == ["bot: busy?"])
    await bridge.idle()
    http_status = 429 if code == 20429 else 500
    assert [a.status for a in tw.attempts(PERSON)] == [http_status, http_status, 201]
    assert tw.bodies(PERSON) == ["bot: busy?"]


async def test_invalid_number_is_unreachable(bridge: Harness, tw: FakeTwilio) -> None:
    tw.fail(21211, times=None)
    await bridge.deliver_form(sms("hi"))
    await tw.wait_for(lambda: len(tw.attempts(PERSON)) == 1)
    await eventually(lambda: blocked(bridge))
    await trigger(bridge, PERSON, status=400)
    await bridge.idle(settled=True)
    assert len(tw.attempts(PERSON)) == 1


async def test_wrong_credentials_are_final_and_never_leak(
    tmp_path: Path, tw: FakeTwilio, ocs: FakeOCS
) -> None:
    wrong = "0123456789abcdef0123456789abcdef"
    async with platform_bridge(tmp_path / "b.db", tw=tw, **ocs.env(), TWILIO_AUTH_TOKEN=wrong) as bridge:
        response = await bridge.post_form(sms("hi"), token=wrong)  # the bridge checks with its own token
        assert response.status == 200
        await eventually(lambda: dead_reasons(bridge))
        [reason] = await dead_reasons(bridge)
        assert "401" in reason and "TWILIO_AUTH_TOKEN" in reason and wrong not in reason
        assert len(tw.attempts()) == 1


# long parts and media ----------------------------------------------------------------------------
async def test_sms_links_that_do_not_fit_go_next_and_a_retry_resumes(
    bridge: Harness, tw: FakeTwilio, ocs: FakeOCS
) -> None:
    text = "word " * 318  # 1590 characters: one part, but no room left for the link
    files: list[Attachment] = [("report.pdf", b"%PDF-1.4")]
    ocs.reply = lambda t, session: (text, files)
    calls = 0

    def second_call_fails(params: Any) -> bool:
        nonlocal calls
        calls += 1
        return calls == 2

    tw.rules.append(Rule(20500, second_call_fails, times=1))
    await bridge.deliver_form(sms("report please"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 2)
    await bridge.idle()
    bodies = tw.bodies(PERSON)
    assert bodies[0] == text.strip() and bodies[1].startswith("report.pdf: ")
    assert [a.status for a in tw.attempts(PERSON)] == [201, 500, 201]  # the link message was retried
    assert len(bodies) == 2  # ... and the text was not sent again


async def test_more_than_ten_whatsapp_attachments(bridge: Harness, tw: FakeTwilio, ocs: FakeOCS) -> None:
    files: list[Attachment] = [(f"img{i:02d}.png", b"png") for i in range(12)]
    ocs.reply = lambda t, session: ("Twelve pictures", files)
    await bridge.deliver_form(whatsapp("pictures"))
    await tw.wait_for(lambda: len(tw.sent(WA_PERSON)) == 2)
    first, second = tw.sent(WA_PERSON)
    assert first.body == "Twelve pictures" and len(first.media) == 10
    assert second.body == "" and len(second.media) == 2 and second.media[-1].endswith("img11.png")


# senders -----------------------------------------------------------------------------------------
async def test_proactive_message_needs_a_sender(bridge: Harness, tw: FakeTwilio) -> None:
    await trigger(bridge, "+15559990000")
    await eventually(lambda: dead_reasons(bridge))
    [reason] = await dead_reasons(bridge)
    assert "TWILIO_FROM_NUMBER" in reason
    assert tw.attempts() == []


async def test_from_number_and_messaging_service(tmp_path: Path, tw: FakeTwilio, ocs: FakeOCS) -> None:
    env = {**ocs.env(), "BRIDGE_API_KEY": "k", "TWILIO_FROM_NUMBER": "+15550001111"}
    async with platform_bridge(tmp_path / "a.db", tw=tw, **env) as bridge:
        await trigger(bridge, "+15559990000")
        await trigger(bridge, "whatsapp:+15559990001")
        await tw.wait_for(lambda: len(tw.sent()) == 2)
        assert {(s.to, s.sender) for s in tw.sent()} == {
            ("+15559990000", "+15550001111"),
            ("whatsapp:+15559990001", "whatsapp:+15550001111"),
        }
    service = "MG" + "a" * 32
    tw.log.clear()
    async with platform_bridge(
        tmp_path / "b.db", tw=tw, **ocs.env(), TWILIO_MESSAGING_SERVICE_SID=service
    ) as bridge:
        await bridge.deliver_form(sms("hi", to="+15557654321"))
        await tw.wait_for(lambda: len(tw.sent()) == 1)
        [sent] = tw.sent()
        assert sent.params["MessagingServiceSid"] == service and sent.sender == "+15557654321"


# status callbacks --------------------------------------------------------------------------------
async def test_status_callbacks_out_of_order_keep_the_final_status(bridge: Harness, tw: FakeTwilio) -> None:
    await bridge.deliver_form(sms("hi"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
    sid = tw.sent()[0].sid
    await eventually(lambda: stored_sid(bridge, sid))  # the worker recorded the send
    for state in ("delivered", "sent", "queued"):
        await bridge.report(status(sid, state))
    assert await delivery_status(bridge, sid) == "delivered"
    await bridge.report(status("SM" + "0" * 32, "delivered"))  # not ours: acknowledged, ignored


async def test_failed_status_with_opt_out_blocks_the_person(bridge: Harness, tw: FakeTwilio) -> None:
    await bridge.deliver_form(sms("hi"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
    await bridge.report(status(tw.sent()[0].sid, "failed", error_code="21610"))
    await trigger(bridge, PERSON, status=400)
    await bridge.idle(settled=True)
    assert len(tw.attempts(PERSON)) == 1


async def test_status_callback_is_verified(bridge: Harness, tw: FakeTwilio) -> None:
    await bridge.deliver_form(sms("hi"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
    sid = tw.sent()[0].sid
    path = "/webhooks/twilio/status"
    assert (await bridge.post_form(status(sid, "failed"), path=path, signature=Unsigned)).status == 403
    assert (await bridge.post_form(status(sid, "failed"), path=path, token="1" * 32)).status == 403
    assert (await bridge.post_form(status(sid, "failed"), path=path, content_type="text/plain")).status == 415
    signed_elsewhere = await bridge.post_form(
        status(sid, "failed"), path=path, signed_url=bridge.public_url + "/x"
    )
    assert signed_elsewhere.status == 403
    response = await bridge.post_form(status(sid, "delivered"), path=path)
    assert response.status == 200 and response.content_type == "text/xml"
    assert await delivery_status(bridge, sid) == "delivered"


# check -------------------------------------------------------------------------------------------
async def test_check_names_the_account(tmp_path: Path, tw: FakeTwilio) -> None:
    from adapters.twilio import TwilioChannel
    from bridge.settings import ChannelSettings

    def channel(token: str, base: str) -> TwilioChannel:
        settings = ChannelSettings.model_validate(
            {"type": "twilio", "account_sid": tw.account_sid, "auth_token": token, "api_base_url": base}
        )
        return TwilioChannel("twilio", settings)

    assert "Bridge test account" in await channel(AUTH_TOKEN, tw.url).check()
    wrong = "9" * 32
    with pytest.raises(SendError) as failed:
        await channel(wrong, tw.url).check()
    assert "TWILIO_AUTH_TOKEN" in failed.value.reason and wrong not in failed.value.reason
    with pytest.raises(SendError) as unreachable:
        await channel(AUTH_TOKEN, "http://127.0.0.1:9").check()
    assert "cannot reach Twilio" in unreachable.value.reason
