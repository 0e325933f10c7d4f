"""structlog set-up: one JSON object per event in production, readable lines on a terminal.

Library logs (aiohttp, SQLAlchemy, PTB) go through the same renderer, every record through
``bridge.redact`` first. The message id of the message being handled is bound with contextvars,
so every line of its path carries it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys
from typing import Any

import structlog

from bridge.redact import FILTER


def configure(fmt: str | None = None, level: str = "info") -> None:
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.addFilter(FILTER)  # secrets, raw requests and bodies never reach the output
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # these log request URLs (tokens) or SQL parameters (message texts) at INFO/DEBUG
    for noisy in (
        "aiohttp.access",
        "httpx",
        "httpcore",
        "sqlalchemy.engine",
        "alembic",
        "aiosqlite",
        "asyncpg",
        "twilio",  # every request at INFO
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("telegram").setLevel(max(root.level, logging.INFO))  # parameters at DEBUG


_pseudonym_key = b"channel-bridge"


def set_pseudonym_key(key: bytes) -> None:
    """The key of ``mask``'s hash (``Settings.pseudonym_key``: the same in every process)."""
    global _pseudonym_key
    _pseudonym_key = key


def mask(value: str) -> str:
    """A stable pseudonym for a phone number or chat id: its last 4 characters (of long ones) and a
    short keyed hash (``…4567#3fa9c2``), so one person can be followed through the logs without the
    number, and two numbers ending alike do not look the same."""
    digest = hmac.new(_pseudonym_key, value.encode(), hashlib.sha256).hexdigest()[:6]
    return f"…{value[-4:] if len(value) >= 8 else ''}#{digest}"
