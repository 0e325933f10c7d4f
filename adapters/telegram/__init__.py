"""The Telegram channel (python-telegram-bot): webhook or long polling in, Bot API out."""

from __future__ import annotations

from .channel import TelegramChannel
from .options import TelegramOptions

__all__ = ["TelegramChannel", "TelegramOptions"]
