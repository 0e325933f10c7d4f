"""The Twilio channel's settings (``TWILIO_*`` in the one-bot case, ``channels.NAME.*`` in TOML)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bridge.settings import BaseUrl

DEFAULT_API = "https://api.twilio.com"
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
_NUMBER = re.compile(
    r"^(whatsapp:)?\+[1-9]\d{4,14}$|^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$"
)  # E.164 or alphanumeric sender id


class TwilioOptions(BaseModel):
    """``account_sid`` and ``auth_token`` are required; the rest have working defaults.

    Replies go out from the number the person wrote to. ``from_number`` is the sender of messages
    to people who have not written yet (``/api/trigger_bot``); ``messaging_service_sid`` sends
    through a Messaging Service (Twilio picks the sender when none is known).
    """

    model_config = ConfigDict(extra="forbid")

    account_sid: str
    auth_token: SecretStr
    api_base_url: BaseUrl = DEFAULT_API
    from_number: str = ""  # "+15551234567" (WhatsApp replies use "whatsapp:" + it)
    messaging_service_sid: str = ""
    status_callbacks: bool = True  # ask for delivery reports (only when PUBLIC_URL is set)
    request_timeout: float = Field(default=15.0, gt=0)
    whatsapp_template_sid: str = ""  # an approved template (HX...) for people outside the 24 hours

    @field_validator("whatsapp_template_sid")
    @classmethod
    def _template(cls, value: str) -> str:
        if value and not _CONTENT_SID.match(value.strip()):
            raise ValueError("not a Content SID (expected HX followed by 32 hex digits)")
        return value.strip()

    @field_validator("account_sid")
    @classmethod
    def _sid(cls, value: str) -> str:
        if not _ACCOUNT_SID.match(value.strip()):
            raise ValueError("not a Twilio Account SID (expected AC followed by 32 hex digits)")
        return value.strip()

    @field_validator("auth_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("required")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("messaging_service_sid")
    @classmethod
    def _service(cls, value: str) -> str:
        if value and not _SERVICE_SID.match(value.strip()):
            raise ValueError("not a Messaging Service SID (expected MG followed by 32 hex digits)")
        return value.strip()

    @field_validator("from_number")
    @classmethod
    def _number(cls, value: str) -> str:
        value = value.strip().replace(" ", "") if value.strip().startswith(("+", "whatsapp:")) else value
        if value and not _NUMBER.match(value):
            raise ValueError("must be an E.164 number like +15551234567 (or whatsapp:+15551234567)")
        return value
