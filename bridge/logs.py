"""structlog set-up: one JSON object per event in production, readable lines on a terminal.

Library logs (aiohttp, SQLAlchemy, PTB) go through the same renderer, every record through
``bridge.redact`` first. The message id of the message being handled is bound with contextvars,
so every line of its path carries it.
"""

from __future__ import annotations

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
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def mask(value: str) -> str:
    """Mask a phone number or other personal id for logs: keep the last 4 characters."""
    if len(value) <= 4:
        return "****"
    return "*" * (len(value) - 4) + value[-4:]
