"""Health, readiness and metrics; waiting for the database at start; database outages as 503.

``/readyz`` tells the truth: 503 with a ``detail`` while the database is unreachable or its schema
is behind the code, or while no worker is alive anywhere (heartbeats in the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from bridge.core import Core
from bridge.errors import ConfigError, Unauthorized
from bridge.metrics import CONTENT_TYPE
from bridge.secrets import matches
from bridge.store import heartbeats
from bridge.store.db import (
    DATABASE_ERRORS,
    create_engine,
    current_revisions,
    migrate,
    schema_problem,
    short,
    sqlite_file,
)
from bridge.typedefs import CORE

log = structlog.get_logger("bridge.health")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CHECK_TIMEOUT = 5.0
_BEARER = {"WWW-Authenticate": 'Bearer realm="metrics"'}


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    problems = await _problems(core)
    if problems:
        return web.json_response({"status": "unavailable", "detail": "; ".join(problems)}, status=503)
    return web.json_response({"status": "ready"})


async def _problems(core: Core) -> list[str]:
    try:
        problem = await asyncio.wait_for(schema_problem(core.store.engine), _CHECK_TIMEOUT)
    except DATABASE_ERRORS as exc:
        return [f"database: unreachable ({type(exc).__name__})"]
    if problem is not None:
        return [f"database: schema {problem}"]
    if core.workers:  # this process runs its own
        return ["workers: not running" for w in core.workers if not w.running]
    within = heartbeats.silent_after(core.settings.worker.lease_seconds)
    try:
        alive = await asyncio.wait_for(core.store.live_workers(within), _CHECK_TIMEOUT)
    except DATABASE_ERRORS as exc:
        return [f"database: unreachable ({type(exc).__name__})"]
    if not alive:
        return [f"workers: none alive (no heartbeat in {within:g} s; is `chatbridge worker` running?)"]
    return []


async def metrics(request: web.Request) -> web.Response:
    core = request.app[CORE]
    token = core.settings.metrics_token
    if token is not None:  # METRICS_TOKEN: `Authorization: Bearer TOKEN`, compared in constant time
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not matches(given.strip(), token.get_secret_value()):
            raise Unauthorized("/metrics needs `Authorization: Bearer METRICS_TOKEN`", headers=_BEARER)
    backlog = None
    with contextlib.suppress(*DATABASE_ERRORS):
        backlog = await asyncio.wait_for(core.store.backlog(), _CHECK_TIMEOUT)
    return web.Response(body=core.metrics.render(backlog), headers={"Content-Type": CONTENT_TYPE})


@web.middleware
async def database_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The database down (or not migrated) answers 503 with one log line, not a 500 and a traceback."""
    try:
        return await handler(request)
    except DATABASE_ERRORS as exc:
        log.warning("database unavailable", error=short(exc))
        return web.json_response(
            {"detail": "The service is unavailable; try again shortly."},
            status=503,
            headers={"Retry-After": "5"},
        )


async def migrate_sqlite(url: str) -> None:
    """``serve`` migrates an SQLite file itself; one that cannot be is a bad setting."""
    try:
        await migrate(url)
    except Exception as exc:
        raise ConfigError(
            f"DATABASE_URL: cannot create or migrate the SQLite database ({short(exc)})"
        ) from None


async def migrate_and_say(url: str) -> str:
    """``chatbridge migrate``: apply the migrations and say what that did (and where, for SQLite)."""
    path = sqlite_file(url)
    before = [] if path is not None and not path.exists() else await _revisions_at(url)
    await migrate(url)
    after = ", ".join(await _revisions_at(url))
    where = f" in {path.resolve()}" if path is not None else ""
    if not before:
        return f"created the database schema{where} at revision {after}"
    if ", ".join(before) == after:
        return f"the database schema{where} is up to date (revision {after})"
    return f"upgraded the database schema{where} from revision {', '.join(before)} to {after}"


async def _revisions_at(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return await current_revisions(engine)
    finally:
        await engine.dispose()


async def database_ready(core: Core, *, log_every: float = 30.0) -> None:
    """Wait until the database answers at the code's schema (PostgreSQL may start after the bridge,
    and is migrated by ``chatbridge migrate``). Retries with backoff; says so in one short line, at most
    every ``log_every`` seconds."""
    delay, last_log = 0.5, -log_every
    while True:
        try:
            problem = await asyncio.wait_for(schema_problem(core.store.engine), _CHECK_TIMEOUT)
        except DATABASE_ERRORS as exc:
            problem = f"unreachable ({short(exc)})"
        if problem is None:
            return
        if time.monotonic() - last_log >= log_every:
            log.warning("database not ready, retrying", problem=problem, retry_in=f"{delay:g}s")
            last_log = time.monotonic()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
