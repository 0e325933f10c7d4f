"""The aiohttp application: webhooks, health, metrics, the bridge API; resources in ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial

import structlog
from aiohttp import hdrs, web

from bridge import admin, api, body, proactive, voice
from bridge.admin.people import keep_media, retain
from bridge.bot_events import bot_events
from bridge.bots import OcsBot, OcsChatBot, build_bot
from bridge.channel import Channel, WebhookRequest
from bridge.core import Core
from bridge.errors import ApiError, NotFound, Unstorable, error_detail
from bridge.health import database_errors, database_ready, healthz, metrics, migrate_sqlite, readyz
from bridge.media import links
from bridge.proactive import participants
from bridge.settings import Settings
from bridge.store import Store
from bridge.store.db import create_engine
from bridge.typedefs import CHAT_HOST, CORE
from bridge.worker import Worker

log = structlog.get_logger("bridge.web")

Plugin = Callable[[web.Application], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    settings: Settings,
    channels: dict[str, Channel],
    *,
    plugins: Iterable[Plugin] = (),
    workers: bool = True,
    background: Iterable[Callable[[Core], Awaitable[None]]] = (),
    probes_only: bool = False,
) -> web.Application:
    """Build the app. ``plugins`` add routes (the widget); ``background`` are extra long-running
    tasks started with the core (Telegram long polling); ``probes_only``: health and metrics alone
    (``bridge worker --metrics-port``)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes, middlewares=[log_requests, json_errors, database_errors]
    )
    app.on_response_prepare.append(json_error_body)
    app.cleanup_ctx.append(_core_context(settings, channels, workers, list(background)))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if probes_only:
        return app
    app.router.add_post("/webhooks/{channel}", webhook)
    app.router.add_post("/webhooks/{channel}/status", status_webhook)
    app.router.add_post("/api/trigger_bot", api.trigger_bot)
    app.router.add_post("/bot-events/{bot}", bot_events)
    app.router.add_get(links.ROUTE, links.serve)
    participants.install(app)
    voice.install(app)  # spoken answers, fetched by the platforms
    admin.install(app, settings)
    for plugin in plugins:
        plugin(app)
    return app


def _core_context(
    settings: Settings,
    channels: dict[str, Channel],
    run_workers: bool,
    background: list[Callable[[Core], Awaitable[None]]],
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        if settings.is_sqlite:
            await migrate_sqlite(settings.database_url)
        engine = create_engine(settings.database_url)
        bots = {name: build_bot(bot) for name, bot in settings.bots.items()}
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            store = Store(engine)
            stack.push_async_callback(store.close)
            core = Core(settings=settings, store=store, channels=channels, bots=bots)
            for name, bot in bots.items():
                if isinstance(bot, OcsBot | OcsChatBot):  # budgets (and chat tokens) in the store
                    bot.attach(store, core.metrics, name)
            for bot in bots.values():
                await bot.start()
                stack.push_async_callback(bot.stop)
            for channel in channels.values():
                await channel.start(core.context(channel))
                stack.push_async_callback(channel.stop)
            # HTTP answers at once (/readyz 503 meanwhile); the work starts once the database is ready
            # (an SQLite file was migrated above)
            ready = None if settings.is_sqlite else asyncio.create_task(database_ready(core))
            tasks = [asyncio.create_task(_after(ready, partial(run, core))) for run in background]
            working = None
            if run_workers:
                # owners fit in 64 characters (a Kubernetes pod name alone may take 63)
                worker = Worker(core, owner=f"{socket.gethostname()[:48]}:{secrets.token_hex(4)}")
                core.workers.append(worker)
                working = asyncio.create_task(_after(ready, worker.run), name="worker")
                tasks += [
                    asyncio.create_task(_after(ready, partial(run, core)), name="proactive")
                    for run in [*proactive.loops(), retain, keep_media]
                ]
            app[CORE] = core
            app[CHAT_HOST] = core
            try:
                yield
            finally:
                for running in core.workers:
                    await running.stop(settings.worker.shutdown_grace)
                if working is not None:  # its loop sees the stop: no query is cut off under way
                    await asyncio.wait([working], timeout=settings.worker.poll_interval + 5)
                    tasks.append(working)  # (its end forgets its heartbeat: /readyz elsewhere follows)
                if ready is not None:
                    tasks.append(ready)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    return context


async def _after(ready: asyncio.Task[None] | None, start: Callable[[], Awaitable[None]]) -> None:
    """Start a long-running task once the database is ready; log its failure."""
    if ready is not None:
        await asyncio.shield(ready)
    await _logged(start())


async def _logged(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task failed")


# middlewares ------------------------------------------------------------------------------------
@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is JSON ``{"detail": ...}`` with the right status; never a 500 for bad input."""
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response({"detail": exc.detail}, status=exc.status, headers=exc.headers)
    except Unstorable as exc:
        return web.json_response({"detail": str(exc)}, status=400)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "content-range")}
        return web.json_response(
            {"detail": error_detail(exc.status, exc.reason)}, status=exc.status, headers=headers
        )
    except Exception:
        log.exception("unhandled error")
        return web.json_response({"detail": "Internal error; nothing was lost."}, status=500)


async def json_error_body(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: an error answer aiohttp makes itself once the request is routed
    (417 for an unknown ``Expect``, which it checks before any middleware) is JSON too."""
    if response.status < 400 or not isinstance(response, web.Response):
        return
    if response.content_type == "application/json" or (
        response.content_type == "text/html" and request.path.startswith("/admin")  # the operator's page
    ):
        return
    content = json.dumps({"detail": error_detail(response.status, response.reason)}).encode()
    response.body = content
    response.headers[hdrs.CONTENT_TYPE] = "application/json; charset=utf-8"
    response.headers[hdrs.CONTENT_LENGTH] = str(len(content))


REQUEST_ID = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: logged at debug


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request with its route template and status; the request id (taken from
    ``X-Request-ID`` when the caller sent a sensible one) is on every line and in the answer."""
    started = time.perf_counter()
    given = request.headers.get(REQUEST_ID, "")
    request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(8)
    route = _route(request)
    status = 500
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
            status = response.status
            response.headers[REQUEST_ID] = request_id
            return response
        except web.HTTPException as exc:  # redirects json_errors lets through
            status = exc.status
            exc.headers[REQUEST_ID] = request_id
            raise
        finally:
            elapsed = time.perf_counter() - started
            counted = request.app[CORE].metrics
            counted.requests.labels(route, request.method, str(status)).inc()
            counted.request_time.labels(route).observe(elapsed)
            level = log.debug if route in _QUIET else log.info
            level("request", method=request.method, route=route, status=status, ms=round(elapsed * 1000, 2))


def _route(request: web.Request) -> str:
    """The route's template (``/api/chat/{session_id}/poll/``): paths may carry session ids."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


# handlers ---------------------------------------------------------------------------------------
async def webhook(request: web.Request) -> web.Response:
    """Verify, parse, store durably, acknowledge: nothing slow happens here. Only a request the
    adapter cannot read is a 400; anything else that fails is ours, a 500 with its traceback in the
    log, so that the platform retries and an operator sees it."""
    return await _receive(request, status=False)


async def status_webhook(request: web.Request) -> web.Response:
    """Delivery reports (Twilio status callbacks), the same way."""
    return await _receive(request, status=True)


async def _receive(request: web.Request, *, status: bool) -> web.Response:
    started = time.perf_counter()
    core = request.app[CORE]
    name = request.match_info["channel"]
    channel = _channel(core, name)
    hook = await _verified(request, channel, status=status)
    received = channel.parse(hook)
    if received.messages or received.events:
        await core.receive(name, received)
    response = channel.ack()
    core.metrics.ack_time.labels(name).observe(time.perf_counter() - started)
    return response


def _channel(core: Core, name: str) -> Channel:
    channel = core.channels.get(name)
    if channel is None:
        raise NotFound(f"unknown channel {name!r}")
    return channel


async def _verified(request: web.Request, channel: Channel, *, status: bool) -> WebhookRequest:
    """The request as the platform made it (URL rebuilt from PUBLIC_URL), once its signature checks out."""
    hook = WebhookRequest(
        url=request.app[CORE].settings.base_url + request.rel_url.raw_path_qs,  # as signed: not decoded
        headers=request.headers,
        body=await body.read(request),
        content_type=request.content_type,
        status=status,
    )
    try:
        await channel.verify(hook)
    except ApiError as exc:  # which channel, why and from where; never the secret
        log.warning(
            "webhook rejected",
            channel=channel.name,
            status=exc.status,
            reason=exc.detail,
            client=request.remote,
            forwarded_for=request.headers.get("X-Forwarded-For", "")[:200] or None,
        )
        raise
    return hook
