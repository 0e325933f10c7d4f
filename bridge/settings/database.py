"""``DATABASE_URL``: the spellings operators paste, and the ``sslmode`` managed databases hand out."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL, make_url

# libpq's sslmode (what managed databases hand out) and ``ssl=true`` -> asyncpg's ``ssl`` argument.
_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
_SSL_FLAGS = {"true": "require", "1": "require", "on": "require", "false": "disable", "0": "disable"}


def database_url(value: str) -> str:
    """Accept the usual spellings (``postgres://`` from Heroku and friends); need an async driver."""
    for plain in ("postgres://", "postgresql://"):
        if value.startswith(plain):
            value = "postgresql+asyncpg://" + value[len(plain) :]
    if value.startswith("sqlite://"):
        value = "sqlite+aiosqlite://" + value[len("sqlite://") :]
    if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ValueError("must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST/DB")
    if value.startswith("postgresql"):
        postgres_ssl(value)  # a ValueError names the bad sslmode
    return value


def postgres_ssl(url: str) -> tuple[URL, dict[str, Any]]:
    """The URL without ``sslmode``/``ssl`` and the ``connect_args`` asyncpg needs for them.

    Raises ``ValueError`` for a mode asyncpg does not know."""
    parsed = make_url(url)
    query = dict(parsed.query)
    mode = query.pop("sslmode", None) or query.pop("ssl", None)
    query.pop("ssl", None)
    if mode is None:
        return parsed, {}
    mode = str(mode).lower()
    mode = _SSL_FLAGS.get(mode, mode)
    if mode not in _SSL_MODES:
        raise ValueError(f"sslmode must be one of {', '.join(sorted(_SSL_MODES))}")
    return parsed.set(query=query), {"ssl": mode}
