"""What never reaches a log line: secrets, secret-bearing header values, raw requests, message bodies.

``Redact`` is a filter on the root handler, so it sees every record: the bridge's (structlog event
dicts) and every library's (aiohttp's server and access logs, asyncio, SQLAlchemy, httpx,
python-telegram-bot). It rewrites a record before it is formatted:

- the configured secrets (``hide``), Telegram bot tokens and the values of headers that carry
  secrets are replaced wherever they appear;
- a raw HTTP request quoted in a message (aiohttp's parser errors quote the bytes it received) is
  withheld;
- exceptions keep their type and traceback, but their message only if it is known to be safe (the
  bridge's own errors, OS errors): parser errors quote requests, database errors their parameters;
- libraries that log statement or API call parameters (SQLAlchemy and its drivers, PTB) keep
  their message template, not the parameters.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from pydantic import BaseModel, SecretStr

from bridge.errors import ApiError, ConfigError

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

WITHHELD = "<withheld>"
_TOKEN = re.compile(r"(bot)?\d{5,}:[A-Za-z0-9_-]{30,}")  # Telegram bot tokens (also inside URLs)
_HEADER = re.compile(
    r"(?i)(authorization|proxy-authorization|cookie|set-cookie|x-api-key|x-embed-key|x-session-token"
    r"|x-telegram-bot-api-secret-token|x-twilio-signature)(['\"]?\s*[:=]\s*['\"]?)([^\r\n'\",;]*)"
)
_RAW_REQUEST = re.compile(r"(?s)[A-Z]{3,10} \S* HTTP/\d(\.\d)?(\\r|\\n|\r|\n).*")
_PARAMETER_LOGGERS = ("sqlalchemy", "telegram", "asyncpg", "aiosqlite")  # statements, API call data
_PLACEHOLDER = re.compile(r"%(\([^)]*\))?[-#0 +]*\d*(\.\d+)?[a-zA-Z]")
_SAFE_EXCEPTIONS: tuple[type[BaseException], ...] = (OSError, ApiError, ConfigError)


class Redact(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # a structlog event (wrap_for_formatter)
            event = {k: self.clean_value(v) for k, v in record.msg.items() if k != "exc_info"}
            exc_info = _exc_info(record.msg.get("exc_info")) or _exc_info(record.exc_info)
            if exc_info is not None:
                event["exception"] = self.exception_text(exc_info)
            record.msg = event
        else:
            message = self.clean(_message(record))
            exc_info = _exc_info(record.exc_info)
            if exc_info is not None:
                message += "\n" + self.exception_text(exc_info)
            record.msg, record.args = message, ()
        record.exc_info, record.exc_text = None, None
        if record.stack_info:
            record.stack_info = self.clean(record.stack_info)
        return True

    def clean(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, WITHHELD)
        text = _TOKEN.sub(lambda m: f"{m.group(1) or ''}<token>", text)
        text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{WITHHELD}", text)
        return _RAW_REQUEST.sub("<raw request withheld>", text)

    def clean_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.clean(value)
        if isinstance(value, dict):
            return {k: self.clean_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.clean_value(v) for v in value]
        if isinstance(value, bytes | bytearray):
            return WITHHELD
        return value

    def exception_text(self, exc_info: ExcInfo) -> str:
        text = "".join(traceback.format_exception(*exc_info))
        for exc in _chain(exc_info[1]):
            detail = str(exc)
            if detail and not isinstance(exc, _SAFE_EXCEPTIONS):
                text = text.replace(detail, WITHHELD)
        return self.clean(text)


FILTER = Redact()


def hide_secrets(settings: BaseModel, channels: Iterable[object]) -> None:
    """Never log a secret of the settings or of a channel's options (short ones would mask too much)."""
    options = [getattr(channel, "options", None) for channel in channels]
    FILTER.secrets.update(v for v in _secret_values(settings, *options) if len(v) >= 6)


def _secret_values(*models: object) -> Iterator[str]:
    """Every ``SecretStr`` inside these settings models (nested models, dicts and lists too)."""
    for model in models:
        if isinstance(model, SecretStr):
            yield model.get_secret_value()
        elif isinstance(model, BaseModel):
            yield from _secret_values(*(getattr(model, name) for name in type(model).model_fields))
        elif isinstance(model, dict):
            yield from _secret_values(*model.values())
        elif isinstance(model, list | tuple):
            yield from _secret_values(*model)


def _message(record: logging.LogRecord) -> str:
    if record.name.startswith(_PARAMETER_LOGGERS) and record.args:
        return _PLACEHOLDER.sub(WITHHELD, str(record.msg))
    message = record.getMessage()
    if record.name == "asyncio":  # its later lines are reprs of tasks, callbacks and their arguments
        message = message.split("\n", 1)[0]
    return message


def _exc_info(value: Any) -> ExcInfo | None:
    if value is True:
        value = sys.exc_info()
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value  # type: ignore[return-value]
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__]
