"""Twilio parsing, signatures, error mapping and settings: pure, from recorded-shape payloads."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from multidict import MultiDict

from adapters import build_channels
from adapters.twilio import TwilioChannel, parse
from adapters.twilio.errors import describe, scrub, send_error
from bridge.channel import SendError, Unreachable, WebhookRequest
from bridge.errors import BadRequest, ConfigError, Forbidden, UnsupportedMediaType
from bridge.model import Kind
from bridge.settings import ChannelSettings, load_settings
from fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FORM, payload, sign, sms, status, whatsapp

URL = "https://bridge.example.org/webhooks/twilio"


def channel(**options: str) -> TwilioChannel:
    values = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, **options}
    return TwilioChannel("twilio", ChannelSettings.model_validate({"type": "twilio", **values}))


def hook(
    form: MultiDict[str], signature: str | None = None, url: str = URL, ctype: str = FORM
) -> WebhookRequest:
    headers = {"x-twilio-signature": sign(url, form) if signature is None else signature}
    return WebhookRequest(
        url=url, headers=headers, body=urlencode(list(form.items())).encode(), content_type=ctype
    )


# parsing -----------------------------------------------------------------------------------------
def test_sms_text() -> None:
    [message] = parse.messages(sms("Hello there", to="+15557654321"), "twilio")
    assert message.kind is Kind.TEXT and message.text == "Hello there"
    assert message.person.key == message.person.address == "+15551230001"
    assert message.person.platform == "sms"
    assert message.context == {"to": "+15557654321"}
    assert message.platform_id.startswith("SM")


def test_whatsapp_text_with_profile_name() -> None:
    [message] = parse.messages(whatsapp("hi"), "wa")
    assert message.channel == "wa"
    assert message.person.platform == "whatsapp" and message.person.name == "Ada Lovelace"
    assert message.context["to"] == "whatsapp:+14155238886"


@pytest.mark.parametrize(
    ("name", "changes", "what"),
    [
        ("whatsapp_image", {"MediaContentType0": "text/vcard"}, "contact"),
        ("whatsapp_location", {}, "location"),
    ],
)
def test_media_without_body_is_unsupported(name: str, changes: dict[str, str], what: str) -> None:
    [message] = parse.messages(payload(name, **changes), "twilio")
    assert message.kind is Kind.UNSUPPORTED and message.what == what


def test_media_with_body_relays_the_body_and_keeps_the_media() -> None:
    [message] = parse.messages(payload("whatsapp_image", Body="What is this?"), "twilio")
    assert message.kind is Kind.TEXT and message.text == "What is this?"
    assert message.context["media"][0]["content_type"] == "image/jpeg"


def test_commands() -> None:
    assert parse.messages(sms("/reset"), "t")[0].kind is Kind.RESET
    assert parse.messages(sms(" HELP "), "t")[0].kind is Kind.HELP
    assert parse.messages(sms("help me please"), "t")[0].kind is Kind.TEXT
    assert parse.messages(sms("   "), "t") == []  # nothing to answer


@pytest.mark.parametrize(
    "word", ["STOP", "stop", " Stop ", "UNSUBSCRIBE", "cancel", "End", "quit", "stop  all"]
)
def test_opt_out_words(word: str) -> None:
    assert parse.opt_change(sms(word)) is True
    assert parse.messages(sms(word), "t") == []


@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
def test_opt_in_words(word: str) -> None:
    assert parse.opt_change(sms(word)) is False
    assert parse.messages(sms(word), "t") == []


def test_advanced_opt_out_type_wins_and_sentences_are_not_keywords() -> None:
    assert parse.opt_change(sms("arrêt", OptOutType="STOP")) is True
    assert parse.opt_change(sms("please stop sending me jokes")) is None


@pytest.mark.parametrize("missing", ["MessageSid", "From", "To"])
def test_malformed(missing: str) -> None:
    form = sms("hi")
    for key in (missing, "SmsMessageSid", "SmsSid") if missing == "MessageSid" else (missing,):
        form.popall(key, None)
    with pytest.raises(BadRequest):
        parse.messages(form, "t")


def test_undecodable_body() -> None:
    with pytest.raises(BadRequest):
        parse.decode(b"Body=%FF%FE&From=x")
    with pytest.raises(BadRequest):
        parse.decode(b"\xff\xfe")


def test_status_reports() -> None:
    [ok] = parse.statuses(status("SM1", "delivered"))
    assert (ok.platform_id, ok.status, ok.reason, ok.unreachable) == ("SM1", "delivered", "", False)
    [failed] = parse.statuses(status("SM2", "undelivered", error_code="30003"))
    assert failed.reason == "ErrorCode 30003: unreachable destination handset" and not failed.unreachable
    [gone] = parse.statuses(status("SM3", "failed", error_code="21610"))
    assert gone.unreachable and "opted out" in gone.reason
    with pytest.raises(BadRequest):
        parse.statuses(MultiDict({"AccountSid": ACCOUNT_SID}))


# verification ------------------------------------------------------------------------------------
async def test_verify_accepts_twilio_signatures_with_or_without_the_default_port() -> None:
    tw = channel()
    form = sms("hi")
    await tw.verify(hook(form))
    await tw.verify(hook(form, signature=sign("https://bridge.example.org:443/webhooks/twilio", form)))
    await tw.verify(hook(form, url=URL + "?x=1"))  # the query string is part of the signed URL


@pytest.mark.parametrize("signature", ["", "AAAA", sign(URL + "/other", sms("hi"))])
async def test_verify_rejects(signature: str) -> None:
    with pytest.raises(Forbidden):
        await channel().verify(hook(sms("hi"), signature=signature))


async def test_verify_checks_content_type_and_account() -> None:
    with pytest.raises(UnsupportedMediaType):
        await channel().verify(hook(sms("hi"), ctype="application/json"))
    with pytest.raises(Forbidden, match="AccountSid"):
        await channel().verify(hook(sms("hi", AccountSid="AC" + "1" * 32)))


# errors ------------------------------------------------------------------------------------------
class RestError(Exception):
    def __init__(self, status: int, code: int | None, msg: str):
        self.status, self.code, self.msg = status, code, msg


@pytest.mark.parametrize(
    ("status", "code", "kind", "final"),
    [
        (400, 21610, Unreachable, True),
        (400, 21211, Unreachable, True),
        (400, 63016, SendError, True),
        (400, 21408, SendError, True),
        (401, 20003, SendError, True),
        (429, 20429, SendError, False),
        (500, 20500, SendError, False),
        (503, 503, SendError, False),
    ],
)
def test_send_errors(status: int, code: int, kind: type[SendError], final: bool) -> None:
    error = send_error(
        RestError(status, code, f"Unable to create record: The 'To' number +15551230001 {AUTH_TOKEN}"),
        AUTH_TOKEN,
    )
    assert type(error) is kind and error.final is final
    assert "+15551230001" not in error.reason and AUTH_TOKEN not in error.reason


def test_describe_and_scrub() -> None:
    assert "24-hour window" in describe(63016)
    assert describe("12345", "Twilio said so") == "ErrorCode 12345: Twilio said so"
    scrubbed = scrub("number +1 (555) 123-0001 and whatsapp:+15551230001", "")
    # one person, one pseudonym however the number is written; another number ending alike differs
    assert re.fullmatch(r"number (…0001#[0-9a-f]{6}) and whatsapp:\1", scrubbed)
    assert scrub("+15559990001", "") not in scrubbed


# settings ----------------------------------------------------------------------------------------
def test_env_settings_build_the_channel() -> None:
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15550001111",
    }
    built = build_channels(load_settings(env))["twilio"]
    assert isinstance(built, TwilioChannel)
    assert (
        built.options.api_base_url == "https://api.twilio.com" and built.options.from_number == "+15550001111"
    )
    assert built.capabilities.max_text == 1600 and built.capabilities.media_by_url


def test_unrelated_variables_with_the_prefix_are_ignored() -> None:
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_CLI_PROFILE": "x"}
    assert "twilio" in build_channels(load_settings(env))


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN: required"),
        ({"TWILIO_ACCOUNT_SID": "nope", "TWILIO_AUTH_TOKEN": AUTH_TOKEN}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_API_BASE_URL": "ftp://x"}, "TWILIO_API_BASE_URL"),
        ({"TWILIO_FROM_NUMBER": "5551234"}, "TWILIO_FROM_NUMBER"),
        ({"TWILIO_MESSAGING_SERVICE_SID": "MGxyz"}, "TWILIO_MESSAGING_SERVICE_SID"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    base = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
    with pytest.raises(ConfigError) as error:
        build_channels(load_settings(base | env))
    assert named in str(error.value) and AUTH_TOKEN not in str(error.value)
