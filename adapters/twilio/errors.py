"""Twilio error codes: what they mean, and a failed REST call as the core's ``SendError``."""

from __future__ import annotations

import re

from bridge.channel import SendError, Unreachable
from bridge.logs import mask

OUTSIDE_WINDOW = 63016
AUTHENTICATE = 20003

MEANINGS = {
    20003: "authentication failed",
    20404: "resource not found",
    20429: "too many requests",
    21211: "the 'To' number is not a valid phone number",
    21408: "sending to this region is not enabled on the account (Messaging Geo Permissions)",
    21606: "the 'From' number cannot send this kind of message (not a sender of this account)",
    21610: "the person opted out (replied STOP); they must reply START to receive messages again",
    21612: "Twilio cannot route a message from this sender to this number",
    21614: "the 'To' number is not a mobile number",
    21617: "the message body is too long",
    30003: "unreachable destination handset",
    30004: "message blocked by the person or their carrier",
    30005: "unknown destination handset (the number may no longer exist)",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier (spam)",
    30008: "unknown error from the carrier",
    63003: "WhatsApp: the 'To' address is not a WhatsApp user",
    OUTSIDE_WINDOW: (
        "WhatsApp: more than 24 hours since the person's last message; outside the 24-hour window "
        "only an approved template (ContentSid) can be sent"
    ),
    63024: "WhatsApp: invalid message recipient",
}

# The person cannot be sent to again until they write (or reply START): stop sending.
UNREACHABLE = frozenset({21211, 21610, 21614, 30004, 30005, 30006, 63003, 63024})

_PHONE = re.compile(r"\+?\d[\d ()-]{5,}\d")


def scrub(text: str, secret: str) -> str:
    """Twilio messages may quote phone numbers (masked here); the token never appears in a reason."""
    text = text.replace(secret, "<auth token>") if secret else text
    return _PHONE.sub(lambda m: mask(re.sub(r"\D", "", m.group())), text)


def describe(code: int | str | None, fallback: str = "") -> str:
    """``ErrorCode 30003: unreachable destination handset`` (the meaning, else Twilio's own words)."""
    number = _int(code)
    meaning = MEANINGS.get(number, fallback) if number is not None else fallback
    label = f"ErrorCode {number}" if number is not None else "Twilio error"
    return f"{label}: {meaning}" if meaning else label


def send_error(exc: Exception, secret: str) -> SendError:
    """A ``TwilioRestException`` / ``TwilioServiceException`` as the core's view of the failure."""
    status = _int(getattr(exc, "status", None)) or 0
    code = _int(getattr(exc, "code", None))
    if code == status:  # the library puts the HTTP status there when the body had no code
        code = None
    said = str(getattr(exc, "msg", "") or getattr(exc, "detail", "") or getattr(exc, "title", ""))
    said = scrub(said.split(": ", 1)[-1], secret)  # drop the library's "Unable to create record: "
    if status == 401 or code == AUTHENTICATE:
        return SendError(
            "Twilio rejected the account SID / auth token (HTTP 401): check TWILIO_ACCOUNT_SID and "
            "TWILIO_AUTH_TOKEN",
            final=True,
        )
    reason = f"Twilio HTTP {status}, {describe(code, said)}" if code else f"Twilio HTTP {status}: {said}"
    if status == 429 or code == 20429 or status >= 500:
        return SendError(reason)  # back off and try again (Twilio sends no Retry-After)
    if code in UNREACHABLE:
        return Unreachable(reason)
    return SendError(reason, final=True)


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None
