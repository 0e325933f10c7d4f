"""Twilio webhooks (form-encoded) as the core's messages and delivery reports. Pure: no I/O."""

from __future__ import annotations

from urllib.parse import parse_qsl

from multidict import MultiDict

from bridge.channel import command_kind
from bridge.errors import BadRequest
from bridge.model import DeliveryReport, InboundMessage, Kind, Media, Person

from .errors import UNREACHABLE, describe

Form = MultiDict[str]

# Twilio's default opt-out handling: a message that is exactly one of these words (any case).
OPT_OUT = frozenset(
    {"stop", "stopall", "stop all", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"}
)
OPT_IN = frozenset({"start", "unstop", "yes"})
HELP = frozenset({"help", "info"})
WHATSAPP = "whatsapp:"
MAX_FIELDS = 500


def decode(body: bytes, *, strict: bool = True) -> Form:
    """The posted parameters, every one kept (repeated names too). ``BadRequest`` if undecodable."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8", "strict" if strict else "replace"),
            keep_blank_values=True,
            errors="strict" if strict else "replace",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the body is not a valid form (application/x-www-form-urlencoded, UTF-8)") from None
    return MultiDict(pairs)


def platform_of(address: str) -> str:
    return "whatsapp" if address.startswith(WHATSAPP) else "sms"


def person(form: Form) -> Person:
    sender = _required(form, "From")
    return Person(
        key=sender, address=sender, name=form.get("ProfileName", "").strip(), platform=platform_of(sender)
    )


def opt_change(form: Form) -> bool | None:
    """True: the person opted out (STOP); False: opted back in (START); None: neither."""
    kind = form.get("OptOutType", "").strip().upper()  # set when Advanced Opt-Out is on
    word = " ".join(form.get("Body", "").split()).lower()
    if kind == "STOP" or (not kind and word in OPT_OUT):
        return True
    if kind == "START" or (not kind and word in OPT_IN):
        return False
    return None


STATE_TO = "twilio_to"  # conversation state: the bridge's number the person last wrote to


def messages(form: Form, channel: str) -> list[InboundMessage]:
    """The incoming message, or nothing for opt-out/opt-in keywords and empty messages."""
    platform_id = form.get("MessageSid") or form.get("SmsMessageSid") or ""
    if not platform_id.strip():
        raise BadRequest("MessageSid: required")
    who = person(form)
    to = _required(form, "To")
    if opt_change(form) is not None:
        return []  # an opt-out or opt-in: nothing for the bot (the channel makes it an event)
    text = form.get("Body", "")
    media = _media(form)
    context: dict[str, object] = {"to": to}
    if form.get("MessagingServiceSid"):
        context["messaging_service_sid"] = form["MessagingServiceSid"]
    if media:
        context["media"] = [{"url": url, "content_type": kind} for url, kind in media]

    files = tuple(_file(url, content_type) for url, content_type in media if _what(content_type) != "contact")

    def message(kind: Kind, text: str = "", what: str = "") -> list[InboundMessage]:
        state = {STATE_TO: to}  # replies go out from the number the person wrote to
        given = files if kind is Kind.TEXT else ()
        return [InboundMessage(channel, platform_id, who, kind, text, what, context, state, given)]

    if not text.strip():
        if files:
            return message(Kind.TEXT)
        if media:
            return message(Kind.UNSUPPORTED, what=_what(media[0][1]))
        if form.get("Latitude"):
            return message(Kind.UNSUPPORTED, what="location")
        return []
    kind = command_kind(text)
    if kind is Kind.TEXT and " ".join(text.split()).lower() in HELP:
        kind = Kind.HELP
    return message(kind, text)


def statuses(form: Form) -> list[DeliveryReport]:
    """A status callback: the message's new status and, when it failed, why."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid.strip() or not status:
        raise BadRequest("MessageSid and MessageStatus: required")
    code = form.get("ErrorCode", "").strip()
    if not code or code == "0":
        return [DeliveryReport(platform_id=sid, status=status)]
    number = number_field(form, "ErrorCode", 99_999_999)  # Twilio's codes have 5 digits
    unreachable = number in UNREACHABLE
    return [DeliveryReport(sid, status, reason=describe(number or code[:20]), unreachable=unreachable)]


def number_field(form: Form, name: str, maximum: int) -> int | None:
    """A numeric parameter in ``0..maximum`` (ASCII digits only), else None: never a huge int."""
    value = form.get(name, "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > len(str(maximum)):
        return None
    number = int(value)
    return number if number <= maximum else None


def _required(form: Form, name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise BadRequest(f"{name}: required")
    return value


def _media(form: Form) -> list[tuple[str, str]]:
    count = number_field(form, "NumMedia", 999) if form.get("NumMedia", "").strip() else 0
    if count is None:
        raise BadRequest("NumMedia: not a number")
    count = min(count, 10)
    found = [(form.get(f"MediaUrl{i}", ""), form.get(f"MediaContentType{i}", "")) for i in range(count)]
    return [(url, kind) for url, kind in found if url]


def _file(url: str, content_type: str) -> Media:
    """A ``MediaUrlN``: fetched later with the account's credentials (its type is sniffed then).
    Audio is a voice note (a WhatsApp voice message, an MMS recording): for speech to text."""
    what = _what(content_type)
    kind = "voice" if what == "audio" else what
    return Media(kind=kind, ref=url, content_type=content_type.strip().lower()[:100])


def _what(content_type: str) -> str:
    """What the person sent, in a word the unsupported-kind answer can use."""
    major, _, minor = content_type.lower().partition("/")
    if major in ("image", "audio", "video"):
        return major
    if "vcard" in minor:
        return "contact"
    return "file"
