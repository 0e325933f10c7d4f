"""The Telegram channel's settings (``TELEGRAM_*`` in the one-bot case, ``channels.NAME.*`` in TOML)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bridge.settings import BaseUrl

DEFAULT_API = "https://api.telegram.org"
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class TelegramOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: SecretStr
    webhook_secret: SecretStr
    api_base_url: BaseUrl = DEFAULT_API
    bot_username: str = ""  # learnt with getMe at start when empty
    group_trigger: Literal["mention", "all"] = "mention"
    group_conversation: Literal["chat", "person"] = "chat"
    # Flood limits (Telegram: ~1/s per chat, 20/min per group, 30/s per bot).
    rate_per_chat: float = Field(default=1.0, gt=0)
    rate_per_group: int = Field(default=20, ge=1)
    rate_per_bot: int = Field(default=30, ge=1)
    max_wait: float = Field(default=5.0, ge=0)  # longer waits go back to the worker as retry_after
    request_timeout: float = Field(default=15.0, gt=0)
    poll_timeout: int = Field(default=30, ge=0, le=50)  # getUpdates long-polling seconds
    max_connections: int = Field(default=40, ge=1, le=100)  # setWebhook
    start_description: str = Field(default="Start the conversation", min_length=1, max_length=256)
    reset_description: str = Field(default="Start a new conversation", min_length=1, max_length=256)
    help_description: str = Field(default="How to use this bot", min_length=1, max_length=256)

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not _TOKEN.match(value.get_secret_value()):
            raise ValueError("not a Telegram bot token (expected 123456:ABC...)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not _SECRET.match(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("bot_username")
    @classmethod
    def _username(cls, value: str) -> str:
        return value.strip().lstrip("@").lower()
