"""PTB exceptions -> the core's ``SendError`` / ``Unreachable``, with no token in any reason."""

from __future__ import annotations

import warnings
from datetime import timedelta

from telegram import error as tg

from bridge.channel import SendError, Unreachable

# 400 descriptions that mean the chat is gone for good (sending again cannot help).
_GONE = ("chat not found", "user not found", "peer_id_invalid", "user is deactivated", "chat_write_forbidden")


def retry_after(exc: tg.RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int will become a timedelta
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_bad_markup(exc: tg.BadRequest) -> bool:
    return "can't parse entities" in exc.message.lower() or "unsupported start tag" in exc.message.lower()


def is_gone(exc: tg.BadRequest) -> bool:
    message = exc.message.lower()
    return any(marker in message for marker in _GONE)


class Scrubber:
    """Removes the bot token from text (PTB and httpx messages may quote a URL)."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, text: str) -> str:
        return text.replace(self.token, "<bot token>")

    def send_error(self, exc: tg.TelegramError) -> SendError:
        """The core's view of a failed Bot API call (429/ChatMigrated are handled before)."""
        reason = f"Telegram: {self(exc.message)}"
        if isinstance(exc, tg.RetryAfter):
            return SendError(reason, retry_after=retry_after(exc))
        if isinstance(exc, tg.Forbidden):  # blocked by the user, kicked from the group...
            return Unreachable(reason)
        if isinstance(exc, tg.BadRequest):
            return Unreachable(reason) if is_gone(exc) else SendError(reason, final=True)
        if isinstance(exc, tg.InvalidToken):
            return SendError("Telegram rejected the bot token (check TELEGRAM_BOT_TOKEN)")
        # TimedOut, NetworkError, Conflict, 5xx: try again later with backoff
        return SendError(reason)
