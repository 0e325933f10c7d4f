"""Twilio inbound through the real HTTP app, real SQLite, real workers, fake OCS and fake Twilio REST."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from multidict import MultiDict

from fakes.ocs import FakeOCS
from fakes.ocs_records import Attachment, FakeSession, ReplyResult
from fakes.twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilio,
    Unsigned,
    payload,
    sign,
    sms,
    status,
    whatsapp,
)
from tests.harness import Harness, platform_bridge
from tests.rawhttp import raw_request

PERSON = "+15551230001"
OUR_NUMBER = "+15557654321"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@pytest.fixture
def tw_prefix() -> str:
    return "/twilio-proxy"  # a path prefix: every call keeps it


def relayed(ocs: FakeOCS) -> list[str]:
    return [c.json["message"] for c in ocs.calls if c.path.endswith("/incoming_message")]


async def test_sms_round_trip(bridge: Harness, tw: FakeTwilio, ocs: FakeOCS) -> None:
    response = await bridge.post_form(sms("Hello, bot!", to=OUR_NUMBER))
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert await response.text() == EMPTY_TWIML
    await tw.wait_for(lambda: tw.bodies(PERSON) == ["bot: Hello, bot!"])
    [sent] = tw.sent()
    assert sent.sender == OUR_NUMBER  # from the number the person wrote to
    assert sent.user == ACCOUNT_SID
    assert sent.params["StatusCallback"] == "https://bridge.example.org/webhooks/twilio/status"
    assert "MediaUrl" not in sent.params
    # the next message, to another of our numbers, continues the session and is answered from it
    await bridge.deliver_form(sms("And again", to="+15550009999"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 2)
    assert tw.sent(PERSON)[1].sender == "+15550009999"
    [session] = ocs.sessions.values()
    assert ocs.messages(session.id) == ["Hello, bot!", "And again"]


async def test_whatsapp_round_trip_with_media(bridge: Harness, tw: FakeTwilio, ocs: FakeOCS) -> None:
    def reply(text: str, session: FakeSession) -> ReplyResult:
        return f"bot: {text}", [("chart.png", b"\x89PNG fake"), ("notes.pdf", b"%PDF-1.4")]

    ocs.reply = reply
    await bridge.deliver_form(whatsapp("Show me the chart"))
    await tw.wait_for(lambda: len(tw.sent("whatsapp:+15551230001")) == 1)
    [sent] = tw.sent()
    assert sent.sender == "whatsapp:+14155238886"
    assert sent.body == "bot: Show me the chart"
    assert len(sent.media) == 2 and all(url.startswith(ocs.url) for url in sent.media)
    assert sent.media[0].endswith("chart.png")
    assert "Ada Lovelace" in str(next(iter(ocs.sessions.values())).state)


async def test_sms_attachments_go_as_named_links(bridge: Harness, tw: FakeTwilio, ocs: FakeOCS) -> None:
    files: list[Attachment] = [("report.pdf", b"%PDF-1.4")]
    ocs.reply = lambda text, session: ("Here you go.", files)
    await bridge.deliver_form(sms("send the report"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
    [sent] = tw.sent()
    assert sent.media == []
    text, link = sent.body.split("\n\n")
    assert text == "Here you go."
    assert link.startswith("report.pdf: " + ocs.url) and link.endswith("report.pdf")


@pytest.mark.parametrize(
    "signature",
    [Unsigned, "", "bm90IGEgc2lnbmF0dXJl", "other-token", "other-url", "tampered"],
)
async def test_bad_signature_is_403_and_nothing_is_stored(
    bridge: Harness, tw: FakeTwilio, ocs: FakeOCS, signature: object
) -> None:
    form = sms("sneaky")
    if signature == "other-token":
        response = await bridge.post_form(form, token="0" * 32)
    elif signature == "other-url":
        response = await bridge.post_form(form, signed_url="https://evil.example.org/webhooks/twilio")
    elif signature == "tampered":  # signed, then a parameter was changed on the way
        from fakes.twilio import sign

        good = sign("https://bridge.example.org/webhooks/twilio", form)
        form["Body"] = "tampered"
        response = await bridge.post_form(form, signature=good)
    else:
        response = await bridge.post_form(form, signature=signature)
    assert response.status == 403
    assert "detail" in await response.json()
    await bridge.deliver_form(sms("genuine"))
    await tw.wait_for(lambda: tw.bodies(PERSON) == ["bot: genuine"])
    assert relayed(ocs) == ["genuine"]


async def test_every_posted_parameter_is_signed(bridge: Harness, tw: FakeTwilio) -> None:
    form = sms("new fields", AddOnsNotYetInvented="x", MediaUrl="a")
    form.add("MediaUrl", "b")  # a repeated name counts too
    await bridge.deliver_form(form)
    await tw.wait_for(lambda: tw.bodies(PERSON) == ["bot: new fields"])


async def test_signature_uses_public_url_behind_a_proxy(tmp_path: Path, tw: FakeTwilio, ocs: FakeOCS) -> None:
    public = "https://example.org/bridge"
    async with platform_bridge(tmp_path / "b.db", tw=tw, **ocs.env(), PUBLIC_URL=public) as bridge:
        # the proxy strips /bridge: the request arrives at /webhooks/twilio, Twilio signed the public URL
        await bridge.deliver_form(sms("through the proxy"))
        local = str(bridge.client.make_url("/webhooks/twilio"))
        response = await bridge.post_form(sms("signed for the local URL"), signed_url=local)
        assert response.status == 403
        await tw.wait_for(lambda: tw.bodies(PERSON) == ["bot: through the proxy"])
        assert tw.sent()[0].params["StatusCallback"] == f"{public}/webhooks/twilio/status"


@pytest.mark.parametrize("account", ["AC" + "f" * 32, "AC" + "é" * 32])
async def test_wrong_account_is_403(bridge: Harness, ocs: FakeOCS, account: str) -> None:
    response = await bridge.post_form(sms("hi", AccountSid=account))
    assert response.status == 403
    assert relayed(ocs) == []


@pytest.mark.parametrize("path", ["/webhooks/twilio", "/webhooks/twilio/status"])
@pytest.mark.parametrize("form", [MultiDict(), sms("hi", AccountSid=""), MultiDict(Body="hi")])
async def test_signed_but_malformed_form_is_400(
    bridge: Harness, ocs: FakeOCS, path: str, form: MultiDict[str]
) -> None:
    response = await bridge.post_form(form, path=path)
    assert response.status == 400
    assert (await response.json())["detail"] == "AccountSid: required"
    assert relayed(ocs) == []


@pytest.mark.parametrize("path", ["/webhooks/twilio", "/webhooks/twilio/status"])
@pytest.mark.parametrize("garbage", [b"\xff", b"\xc3\x28\x80\xfe", b"<good>\xff"])
async def test_signature_that_is_not_utf8_is_403(
    bridge: Harness, tw: FakeTwilio, ocs: FakeOCS, path: str, garbage: bytes
) -> None:
    form = sms("sneaky") if path == "/webhooks/twilio" else status("SM" + "0" * 32, "delivered")
    good = sign(f"https://bridge.example.org{path}", form).encode()
    signature = garbage.replace(b"<good>", good)
    headers = [
        (b"Content-Type", b"application/x-www-form-urlencoded"),
        (b"X-Twilio-Signature", signature),
    ]
    body = urlencode(list(form.items())).encode()
    status_code, answer = await raw_request(bridge.client, "POST", path, headers, body)
    assert status_code == 403 and answer["detail"]
    await bridge.deliver_form(sms("genuine"))
    await tw.wait_for(lambda: tw.bodies(PERSON) == ["bot: genuine"])
    assert relayed(ocs) == ["genuine"]


async def test_wrong_content_type_is_415(bridge: Harness, ocs: FakeOCS) -> None:
    response = await bridge.post_form(sms("hi"), content_type="application/json")
    assert response.status == 415
    assert relayed(ocs) == []


@pytest.mark.parametrize("missing", ["MessageSid", "From", "To"])
async def test_malformed_is_400(bridge: Harness, missing: str) -> None:
    form = sms("hi")
    for key in {missing, "SmsMessageSid" if missing == "MessageSid" else missing}:
        form.popall(key)
    response = await bridge.post_form(form)
    assert response.status == 400


async def test_retried_message_sid_gets_one_answer(bridge: Harness, tw: FakeTwilio, ocs: FakeOCS) -> None:
    form = sms("only once")
    await bridge.deliver_form(form)
    await bridge.deliver_form(form)  # Twilio retried: same MessageSid
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
    await bridge.deliver_form(form)
    await bridge.idle()
    assert tw.bodies(PERSON) == ["bot: only once"]
    assert relayed(ocs) == ["only once"]


async def test_long_answer_is_split_in_order(bridge: Harness, tw: FakeTwilio, ocs: FakeOCS) -> None:
    sentences = [f"Sentence number {i:03d} says something useful." for i in range(95)]
    answer = " ".join(sentences)
    assert len(answer) > 4000
    ocs.reply = lambda text, session: answer
    await bridge.deliver_form(sms("tell me everything"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 3)
    await bridge.idle()
    bodies = tw.bodies(PERSON)
    assert len(bodies) == 3 and all(len(b) <= 1600 for b in bodies)
    assert " ".join(bodies).split() == answer.split()  # in order, no word cut


async def test_stop_blocks_until_start(bridge: Harness, tw: FakeTwilio, ocs: FakeOCS) -> None:
    await bridge.deliver_form(sms("hello"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
    tw.opt_out(PERSON)  # Twilio's own opt-out list
    await bridge.deliver_form(sms(" Stop "))
    trigger = {
        "identifier": PERSON,
        "platform": "sms",
        "experiment": ocs.experiment_id,
        "message_text": "Reminder!",
    }
    response = await bridge.client.post("/api/trigger_bot", json=trigger, headers={"X-api-key": "k"})
    assert response.status == 400 and "opted out" in (await response.json())["detail"]
    await bridge.idle(settled=True)
    assert len(tw.attempts(PERSON)) == 1  # nothing tried after STOP
    assert relayed(ocs) == ["hello"]  # STOP never reached the bot
    await bridge.deliver_form(sms("are you there?"))  # writing is not opting in: SMS needs START
    await bridge.idle(settled=True)
    assert len(tw.attempts(PERSON)) == 1 and relayed(ocs) == ["hello"]
    tw.opt_in(PERSON)
    await bridge.deliver_form(sms("START"))
    response = await bridge.client.post("/api/trigger_bot", json=trigger, headers={"X-api-key": "k"})
    assert response.status == 200
    await tw.wait_for(lambda: tw.bodies(PERSON) == ["bot: hello", "Reminder!"])
    assert relayed(ocs) == ["hello"]


@pytest.mark.parametrize("word", ["STOP", "unsubscribe", "Stop All"])
async def test_stop_as_the_very_first_message_holds(
    bridge: Harness, tw: FakeTwilio, ocs: FakeOCS, word: str
) -> None:
    await bridge.deliver_form(sms(word))  # the bridge has never heard from this person
    tw.opt_out(PERSON)
    await bridge.deliver_form(sms("hello?"))
    await bridge.idle(settled=True)
    assert tw.attempts(PERSON) == [] and relayed(ocs) == []  # no bot call, no send
    tw.opt_in(PERSON)
    await bridge.deliver_form(sms("START"))
    await bridge.deliver_form(sms("hello again"))
    await tw.wait_for(lambda: tw.bodies(PERSON) == ["bot: hello again"])
    assert relayed(ocs) == ["hello again"]


async def test_a_location_gets_the_unsupported_answer_and_media_a_link(
    bridge: Harness, tw: FakeTwilio, ocs: FakeOCS
) -> None:
    await bridge.deliver_form(payload("whatsapp_location"))
    await tw.wait_for(lambda: len(tw.sent()) == 1)
    assert "text" in tw.bodies()[0]
    assert relayed(ocs) == []
    # an image, with or without a caption, reaches the bot as a link (tests/twilio/test_twilio_media.py)
    url = tw.add_media(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg")
    await bridge.deliver_form(payload("whatsapp_image", Body="What is this?", MediaUrl0=url))
    await tw.wait_for(lambda: len(tw.sent()) == 2)
    assert relayed(ocs)[0].startswith("What is this?\n\n[image.jpg](")


async def test_reset_starts_a_new_session(bridge: Harness, tw: FakeTwilio, ocs: FakeOCS) -> None:
    await bridge.deliver_form(sms("remember 7"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
    await bridge.deliver_form(sms("/reset"))
    await tw.wait_for(lambda: len(tw.sent(PERSON)) == 2)
    assert "reset" in tw.bodies(PERSON)[1].lower()
    assert len(ocs.sessions) == 2 and relayed(ocs) == ["remember 7"]


def test_token_is_not_in_the_channel_repr() -> None:
    from adapters.twilio import TwilioOptions

    options = TwilioOptions(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)  # type: ignore[arg-type]
    assert AUTH_TOKEN not in repr(options) and AUTH_TOKEN not in str(options.model_dump())


async def test_logs_mask_numbers_and_never_carry_the_token(bridge: Harness, tw: FakeTwilio) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        await bridge.deliver_form(sms("log me"))
        await tw.wait_for(lambda: len(tw.sent(PERSON)) == 1)
        tw.fail(20003)  # the next send: wrong credentials
        await bridge.deliver_form(sms("again"))
        await tw.wait_for(lambda: len(tw.attempts(PERSON)) == 2)
        await bridge.idle()
    text = str(logs)
    assert any(entry["event"] == "sent through Twilio" for entry in logs)
    assert "0001" in text and PERSON not in text and OUR_NUMBER not in text
    assert AUTH_TOKEN not in text and "log me" not in text
