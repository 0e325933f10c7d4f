"""WhatsApp's 24-hour window. Free-form messages reach a person only within 24 hours of their last
message; outside it (Twilio 63016, on the REST call or in a status callback, or no message from
them in 24 hours) only an approved template can be sent. With ``TWILIO_WHATSAPP_TEMPLATE_SID``
the channel sends that template (the person's name as variable ``1`` when the template has one)
and holds the message: the part waits, and everything after it in the conversation, until the
person writes again (``Core.accept`` releases it), then goes out first."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import structlog
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from bridge.channel import SendError
from bridge.model import Conversation, InboundMessage

log = structlog.get_logger(__name__)

WINDOW = timedelta(hours=24)
HOLD = timedelta(days=7)  # a held message is tried again (and the template sent again) after this
STATE_WRITTEN = "whatsapp_written_at"  # conversation state: when the person last wrote on WhatsApp
NAME_VARIABLE = "1"
CLOSED = {STATE_WRITTEN: None}  # Twilio said the window is closed (a 63016 status callback)


class OutsideWindow(SendError):
    """Twilio refused a free-form message: outside the 24-hour window (63016)."""


def stamp(messages: list[InboundMessage], now: datetime) -> list[InboundMessage]:
    """Note, with each WhatsApp message, that the window is open from now."""
    return [
        dataclasses.replace(m, state={**m.state, STATE_WRITTEN: now.isoformat()})
        if m.person.platform == "whatsapp"
        else m
        for m in messages
    ]


def outside(conversation: Conversation, now: datetime) -> bool:
    """No message from the person in the last 24 hours (or none at all) that the bridge knows of."""
    try:
        written = datetime.fromisoformat(str(conversation.state[STATE_WRITTEN]))
    except (KeyError, ValueError):
        return True
    return now - (written if written.tzinfo else written.replace(tzinfo=UTC)) > WINDOW


def held(template_sid: str, message_sid: str) -> SendError:
    reason = (
        "held until the person writes again: WhatsApp allows only a template outside the 24-hour "
        f"window; template {template_sid} sent ({message_sid})"
    )
    return SendError(reason, retry_after=HOLD.total_seconds())


class Template:
    """The approved template: its variables, read once from Twilio's Content API."""

    def __init__(self, sid: str, client: Callable[[], Client]):
        self.sid = sid
        self._client = client
        self._variables: dict[str, str] | None = None

    async def variables(self, name: str) -> dict[str, str]:
        """ContentVariables for this person: their name as ``1`` when the template has it."""
        if self._variables is None:
            try:
                content = await self._client().content.v1.contents(self.sid).fetch_async()
                self._variables = {str(k): str(v) for k, v in (content.variables or {}).items()}
            except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("WhatsApp template unreadable", template=self.sid, error=type(exc).__name__)
                return {NAME_VARIABLE: name} if name else {}
        if NAME_VARIABLE not in self._variables:
            return {}
        return {NAME_VARIABLE: name or self._variables[NAME_VARIABLE]}

    async def params(self, name: str) -> dict[str, str]:
        values = {"content_sid": self.sid}
        variables = await self.variables(name)
        if variables:
            values["content_variables"] = json.dumps(variables)
        return values
