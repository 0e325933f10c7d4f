"""The ``chatbridge`` command (also ``python -m bridge``): the one place that wires the adapters into
the core."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

import adapters
from bridge import __version__, logs, redact, voice
from bridge.admin import commands as admin_commands
from bridge.bots import BotError, build_bot
from bridge.channel import Channel, SendError
from bridge.core import Core
from bridge.errors import ConfigError
from bridge.health import migrate_and_say
from bridge.proactive import commands
from bridge.settings import CONFIG, Settings, exit_on_config_error, load_settings, read_environment
from bridge.store import Store
from bridge.store.db import DATABASE_ERRORS, create_engine, migrate, schema_problem, short, sqlite_file
from bridge.typedefs import CORE
from bridge.variables import check_environment, unknown_line, unknown_names, unknown_variables
from bridge.web import create_app

log = structlog.get_logger("bridge.cli")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    env = read_environment()
    try:
        settings = load_settings(env)
        check_environment(env, adapters.option_models())
        logs.configure(settings.log_format, settings.log_level)
        logs.set_pseudonym_key(settings.pseudonym_key)
        channels = adapters.build_channels(settings)
        redact.hide_secrets(settings, channels.values())
        if args.run is not _check:  # `check` prints them itself
            for line in unknown_variables(env, adapters.option_models()):
                log.warning("unknown variable", detail=line)
        code = args.run(settings, channels, args)
    except ConfigError as exc:
        exit_on_config_error(exc)
        return
    except DATABASE_ERRORS as exc:
        print(f"chatbridge: database unreachable: {short(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code or 0)


# OCS settings that only make sense with the key: without it the echo bot would answer, silently.
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbridge", description="Messaging platforms <-> an OCS chatbot.")
    parser.add_argument("--version", action="version", version=f"channel-bridge {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="HTTP server and delivery workers in one process")
    serve.add_argument("--no-worker", action="store_true", help="HTTP only (workers run elsewhere)")
    serve.set_defaults(run=_serve)
    worker = sub.add_parser("worker", help="delivery workers only")
    worker.add_argument("--metrics-port", type=int, help="serve /metrics, /healthz and /readyz on this port")
    worker.set_defaults(run=_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(run=_migrate)
    sub.add_parser("check", help="validate settings and reach every service").set_defaults(run=_check)

    send = sub.add_parser("send", help="send a message to a person (like trigger_bot's message_text)")
    send.add_argument("channel", help="a channel's name, or a platform (telegram, sms, whatsapp, web)")
    send.add_argument("id", help="the person's id on the platform (chat id, +number, whatsapp:+number)")
    send.add_argument("text", help="the text, delivered as is")
    send.set_defaults(run=_send)
    participants = sub.add_parser("participants", help="the people the bridge serves")
    participants_sub = participants.add_subparsers(required=True, metavar="ACTION")
    listing = participants_sub.add_parser("list", help="list them (filters as GET /api/participants)")
    listing.add_argument("--platform", help="telegram, sms, whatsapp, web, or a channel's name")
    listing.add_argument("--identifier", help="the person's id on the platform")
    listing.add_argument("--chatbot", help="a chatbot's id (its OCS experiment id)")
    listing.set_defaults(run=_participants_list)
    admin_commands.add_parsers(sub, _with_store)

    telegram = sub.add_parser("telegram", help="Telegram webhook and long polling")
    channel_help = "the Telegram channel's name (default: every Telegram channel)"
    telegram.add_argument("--channel", help=channel_help)
    tg_sub = telegram.add_subparsers(required=True, metavar="ACTION")
    for action, run, text in (
        ("set-webhook", _tg_set, "register PUBLIC_URL/webhooks/{channel}"),
        ("delete-webhook", _tg_delete, "remove the webhook"),
        ("poll", _tg_poll, "serve, taking Telegram updates by long polling"),
    ):
        # --channel before or after the action (SUPPRESS: absent here keeps what was given before)
        action_parser = tg_sub.add_parser(action, help=text)
        action_parser.add_argument("--channel", default=argparse.SUPPRESS, help=channel_help)
        action_parser.set_defaults(run=run)
    return parser


Args = argparse.Namespace


# serving ----------------------------------------------------------------------------------------
def _serve(settings: Settings, channels: dict[str, Channel], args: Args) -> int:
    return _run_http(settings, channels, workers=not args.no_worker)


def _run_http(
    settings: Settings,
    channels: dict[str, Channel],
    *,
    workers: bool,
    background: list[Callable[[Core], Awaitable[None]]] | None = None,
) -> int:
    app = create_app(
        settings, channels, plugins=adapters.plugins(), workers=workers, background=background or []
    )
    log.info("starting", port=settings.port, public_url=settings.base_url, channels=sorted(channels))
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            access_log=None,
            print=None,
            shutdown_timeout=settings.worker.shutdown_grace + 5,
        )
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        reason = os.strerror(exc.errno).lower()
        raise ConfigError(f"PORT: cannot listen on port {settings.port} ({reason})") from None
    return 0


def _worker(settings: Settings, channels: dict[str, Channel], args: Args) -> int:
    _existing_database(settings)

    async def run() -> int:
        runner = web.AppRunner(create_app(settings, channels, workers=True, probes_only=True))
        await runner.setup()  # starts the core (and its workers); listens only with --metrics-port
        if args.metrics_port is not None:
            await web.TCPSite(runner, settings.host, args.metrics_port).start()
        log.info("worker started", channels=sorted(channels), metrics_port=args.metrics_port)
        try:
            died = await _until_signal([worker.ended for worker in runner.app[CORE].workers])
        finally:
            await runner.cleanup()
        if died:  # its traceback is logged: exit non-zero, so that a supervisor restarts the process
            log.error("the worker loop died; stopping")
        return 1 if died else 0

    return asyncio.run(run())


async def _until_signal(ended: list[asyncio.Event]) -> bool:
    """Wait for SIGINT or SIGTERM (False), or for one of ``ended`` to be set first (True)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waits = [asyncio.ensure_future(event.wait()) for event in [stop, *ended]]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    return not stop.is_set()


# database ---------------------------------------------------------------------------------------
def _migrate(settings: Settings, channels: dict[str, Channel], args: Args) -> int:
    print(asyncio.run(migrate_and_say(settings.database_url)))
    return 0


def _missing_sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file DATABASE_URL names, when it does not exist (connecting would create it)."""
    path = sqlite_file(settings.database_url)
    return path.resolve() if path is not None and not path.exists() else None


def _existing_database(settings: Settings) -> None:
    """Only ``serve`` and ``migrate`` create a database: any other command run from another directory
    would otherwise start an empty one there."""
    missing = _missing_sqlite_file(settings)
    if missing is not None:
        raise ConfigError(
            f"DATABASE_URL: no SQLite database at {missing} (`chatbridge serve` or `chatbridge migrate` "
            "creates it); run this where the bridge's database is, or set DATABASE_URL"
        )


def _with_store(action: Callable[[Store], Awaitable[int]], settings: Settings) -> int:
    _existing_database(settings)

    async def run() -> int:
        if settings.is_sqlite:  # an older file is brought up to date, as `serve` would
            await migrate(settings.database_url)
        engine = create_engine(settings.database_url)
        store = Store(engine)
        try:
            return await action(store)
        finally:
            await store.close()
            await engine.dispose()

    return asyncio.run(run())


# proactive --------------------------------------------------------------------------------------
def _send(settings: Settings, channels: dict[str, Channel], args: Args) -> int:
    return _with_store(
        lambda store: commands.send(store, channels, args.channel, args.id, args.text), settings
    )


def _participants_list(settings: Settings, channels: dict[str, Channel], args: Args) -> int:
    filters = {"platform": args.platform, "identifier": args.identifier, "chatbot": args.chatbot}
    return _with_store(
        lambda store: commands.list_participants(store, settings, channels, **filters), settings
    )


# check ------------------------------------------------------------------------------------------
def _check(settings: Settings, channels: dict[str, Channel], args: Args) -> int:
    async def run() -> int:
        problems = 0

        async def probe(
            what: str, call: Callable[[], Awaitable[str]], errors: tuple[type[Exception], ...]
        ) -> None:
            nonlocal problems
            try:
                print(f"ok    {what}: {await call()}")
            except errors as exc:
                problems += 1
                print(f"FAIL  {what}: {getattr(exc, 'reason', None) or exc}")

        for name, hint in unknown_names(read_environment(), adapters.option_models()):
            problems += bool(hint)  # a likely typo: what was meant is not set
            print(f"{'FAIL' if hint else 'warn'}  environment: {unknown_line(name, hint)}")
        if not settings.public_url:
            for name, channel in channels.items():
                if channel.kind in ("telegram", "twilio"):
                    problems += 1
                    print(
                        f"FAIL  channel {name!r}: PUBLIC_URL is not set; {channel.kind} cannot reach "
                        f"{settings.base_url} with its webhooks"
                        + (" (only `chatbridge telegram poll` works)" if channel.kind == "telegram" else "")
                    )
        engine = create_engine(settings.database_url)

        async def database() -> str:
            missing = _missing_sqlite_file(settings)
            if missing is not None:  # not created here: the path shows a check run from elsewhere
                return f"sqlite, no database at {missing} yet (`chatbridge serve` creates it at start)"
            try:
                problem = await schema_problem(engine)
            except DATABASE_ERRORS as exc:
                raise RuntimeError(f"unreachable ({short(exc)})") from None
            if problem is not None and not settings.is_sqlite:
                raise RuntimeError(f"{engine.dialect.name} reachable, but the schema is {problem}")
            state = "up to date" if problem is None else "migrated by `chatbridge serve` at start"
            return f"{engine.dialect.name} reachable, schema {state}"

        await probe("database", database, (RuntimeError,))
        await engine.dispose()
        for name, bot_settings in settings.bots.items():
            bot = build_bot(bot_settings)
            await bot.start()
            try:
                await probe(f"bot {name!r}", bot.check, (BotError,))
            finally:
                await bot.stop()
            print(f"ok    bot {name!r} voice notes: {voice.describe(bot_settings)}")
        for name, channel in channels.items():
            try:
                await probe(f"channel {name!r} ({channel.kind})", channel.check, (SendError,))
            finally:
                await channel.stop()  # its client, opened by the check
        print("all good" if not problems else f"{problems} problem(s)")
        return 1 if problems else 0

    return asyncio.run(run())


# telegram ---------------------------------------------------------------------------------------
def _telegram_channels(channels: dict[str, Channel], args: Args) -> list[Any]:
    telegram = [c for c in channels.values() if c.kind == "telegram"]
    if not telegram:
        if read_environment().get(CONFIG):
            raise ConfigError(f"{CONFIG}: no channel of type 'telegram' in the file")
        raise ConfigError("TELEGRAM_BOT_TOKEN: not set, so there is no Telegram channel")
    chosen = [c for c in telegram if args.channel in (None, c.name)]
    if not chosen:
        names = ", ".join(c.name for c in telegram)
        raise ConfigError(f"--channel: no Telegram channel named {args.channel!r} (there is: {names})")
    return chosen


def _tg_set(settings: Settings, channels: dict[str, Channel], args: Args) -> int:
    from adapters.telegram.commands import set_webhook

    chosen = _telegram_channels(channels, args)  # the token is what is missing first
    if not settings.public_url:
        raise ConfigError("PUBLIC_URL: required to register a webhook (Telegram cannot reach localhost)")

    async def action(channel: Any) -> str:
        return f"webhook set to {await set_webhook(channel, settings.base_url)}"

    return _for_each_telegram(action, chosen)


def _tg_delete(settings: Settings, channels: dict[str, Channel], args: Args) -> int:
    from adapters.telegram.commands import delete_webhook

    async def action(channel: Any) -> str:
        await delete_webhook(channel)
        return "webhook deleted"

    return _for_each_telegram(action, _telegram_channels(channels, args))


def _for_each_telegram(action: Callable[[Any], Awaitable[str]], chosen: list[Any]) -> int:
    """Run a one-off Bot API command on each chosen channel, then close their clients."""

    async def run() -> None:
        try:
            for channel in chosen:
                print(f"{channel.name}: {await action(channel)}")
        except SendError as exc:
            raise SystemExit(f"chatbridge: Telegram refused: {exc.reason}") from None
        finally:
            for channel in chosen:
                await channel.stop()

    asyncio.run(run())
    return 0


def _tg_poll(settings: Settings, channels: dict[str, Channel], args: Args) -> int:
    from adapters.telegram.commands import poll_or_exit

    failed: list[str] = []

    def poller(channel: Channel) -> Callable[[Core], Awaitable[None]]:
        return lambda core: poll_or_exit(channel, core, failed)  # type: ignore[arg-type]

    tasks = [poller(channel) for channel in _telegram_channels(channels, args)]
    code = _run_http(settings, channels, workers=True, background=tasks)
    return 1 if failed else code
