"""The one test harness: the real HTTP app (``bridge.web.create_app``, real SQLite, real workers) with
its channels on the fakes (OCS, Telegram, Twilio, or the recording test channel), and waits on state.

    async with start_bridge(settings, ocs=ocs, tg=tg) as bridge:
        await bridge.deliver_update(text_update("hi"))
        await tg.wait_for(lambda: tg.texts(42) == ["bot: hi"])
        await bridge.idle()  # nothing more is on its way
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from multidict import MultiDict
from sqlalchemy import Select, func, select

from bridge.channel import Channel
from bridge.core import Core
from bridge.settings import BotSettings, ChannelSettings, Settings, WorkerSettings, load_settings
from bridge.store.inbound import Inbound
from bridge.store.tables import ConversationRow, MessageRow, PartRow, utcnow
from bridge.typedefs import CORE
from bridge.web import Plugin, create_app
from bridge.worker import Worker
from fakes.channel import SECRET as TEST_SECRET
from fakes.channel import RecordingChannel
from fakes.ocs import FakeOCS
from fakes.telegram import SECRET as TELEGRAM_SECRET
from fakes.telegram import FakeTelegram
from fakes.twilio import AUTH_TOKEN, FORM, PUBLIC_URL, FakeTwilio, sign

FAST_WORKER = {  # settings: short polls and retries, so tests wait on state for little
    "poll_interval": 0.05,
    "retry_base": 0.05,
    "retry_max": 0.2,
    "lease_seconds": 5,
    "shutdown_grace": 1,
}


async def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Wait until ``check()`` (or what it returns, if awaitable) is truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def plant_accept_failure(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> None:
    """A bug of ours inside the webhook's accept: its first ``times`` calls raise ``KeyError``, the
    later ones store as usual (the platform's retry)."""
    original = Inbound.receive
    left = [times]

    def failing(self: Inbound, *args: Any, **kwargs: Any) -> Any:
        if left[0]:
            left[0] -= 1
            raise KeyError("planted bug")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Inbound, "receive", failing)


def ocs_bot(ocs: FakeOCS, **overrides: Any) -> BotSettings:
    """The settings of a bot on the fake OCS."""
    values: dict[str, Any] = {
        "backend": "ocs",
        "base_url": ocs.url,
        "api_key": ocs.api_key,
        "experiment_id": ocs.experiment_id,
        "read_timeout": 5,
        # the fake enforces no team budget unless a test asks it to: tests of other things send
        # more than OCS's 2000 requests in 5 minutes, which the bridge would otherwise wait out
        "team_rate_limit": "1000000/1s",
    }
    return BotSettings(**(values | overrides))


def make_settings(tmp_path: Path, bot: BotSettings, channels: dict[str, Channel], **values: Any) -> Settings:
    """Settings for a bridge on SQLite in ``tmp_path`` with one bot and these channels (fast worker)."""
    worker = FAST_WORKER | values.pop("worker", {})
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}",
        bots={"default": bot},
        channels={name: ChannelSettings(type=c.kind) for name, c in channels.items()},
        worker=WorkerSettings(**worker),
        **values,
    )


def environment(
    database: Path,
    *,
    ocs: FakeOCS | None = None,
    tg: FakeTelegram | None = None,
    tw: FakeTwilio | None = None,
    **env: str,
) -> dict[str, str]:
    """The environment of a bridge on ``database`` whose bot and channels are these fakes."""
    environ = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "DATA_DIR": str(database.parent / "data"),  # people's files, beside the database
        "PUBLIC_URL": PUBLIC_URL,
        **{
            f"WORKER_{name.upper()}": str(value)
            for name, value in FAST_WORKER.items()
            if name != "lease_seconds"
        },
        **(ocs.env() if ocs else {}),
    }
    if tg is not None:
        environ |= {
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
            "TELEGRAM_API_BASE_URL": tg.url,
            "TELEGRAM_RATE_PER_CHAT": "1000",
        }
    if tw is not None:
        environ |= {
            "TWILIO_ACCOUNT_SID": tw.account_sid,
            "TWILIO_AUTH_TOKEN": tw.auth_token,
            "TWILIO_API_BASE_URL": tw.url,
        }
    return environ | env


def build_channels(
    settings: Settings, given: Iterable[Channel] = (), kinds: Iterable[str] | None = None
) -> dict[str, Channel]:
    """The adapter objects for ``settings``' channels (of the types in ``kinds``, if given): the ``given``
    ones (the recording test channel) as they are, the others built from their settings. The one place
    tests construct channels."""
    from adapters import channel_types

    channels = {channel.name: channel for channel in given}
    types = channel_types()
    wanted = set(types if kinds is None else kinds)
    for name, config in settings.channels.items():
        if name not in channels and config.type in wanted:
            channels[name] = types[config.type](name, config)
    return channels


async def idle(
    core: Core, timeout: float = 10.0, *, settled: bool = False, others: Iterable[Worker] = ()
) -> None:
    """Until no work is due (messages, reply parts, conversations), no conversation runs (on the
    bridge's workers or the ``others`` a test started) and the store's writer has nothing queued or
    running: whatever was on its way has arrived. (The follower and the schedules, which wake on their
    own, are not work until they find some.) With ``settled``, nothing may be pending for later either
    (no retry to come): a failure was final."""
    workers = [*core.workers, *others]

    async def quiet() -> bool:
        writer = core.store.writer
        if writer._lease or writer._urgent or writer._normal or writer._running:  # nothing public says so
            return False
        if any(worker.active for worker in workers):
            return False
        now = utcnow() + timedelta(days=365 if settled else 0)
        later = select(ConversationRow.id).where(ConversationRow.next_run_at > now)  # e.g. held parts

        def pending(table: type[MessageRow] | type[PartRow]) -> Select[int]:
            where = (
                table.status == "pending",
                table.next_attempt_at <= now,
                table.conversation_id.not_in(later),
            )
            return select(func.count()).select_from(table).where(*where)

        conversations = select(func.count()).where(ConversationRow.next_run_at <= now)
        async with core.store.reading() as session:
            for count in (pending(MessageRow), pending(PartRow), conversations):
                if await session.scalar(count):
                    return False
        return True

    await eventually(quiet, timeout, "the bridge to be idle")


@dataclass
class Harness:
    """A running bridge and the fakes it talks to."""

    client: TestClient[Any, Any]
    settings: Settings
    channels: dict[str, Channel]
    ocs: FakeOCS | None = None
    tg: FakeTelegram | None = None
    tw: FakeTwilio | None = None
    _said: int = field(default=0, repr=False)

    @property
    def core(self) -> Core:
        return self.client.app[CORE]  # type: ignore[index, no-any-return]

    @property
    def channel(self) -> Any:
        """The bridge's first channel (most tests run with one)."""
        return next(iter(self.channels.values()))

    @property
    def public_url(self) -> str:
        return self.settings.base_url

    async def idle(
        self, timeout: float = 10.0, *, settled: bool = False, others: Iterable[Worker] = ()
    ) -> None:
        """Until whatever was on its way has arrived (see ``idle``)."""
        await idle(self.core, timeout, settled=settled, others=others)

    async def follower_rounds(self, count: int = 2, timeout: float = 10.0) -> None:
        """Until the history follower finished ``count`` more rounds: a read under way has ended, and
        the reads of a whole round began since."""
        core = self.core
        until = core.history_rounds + count
        await eventually(lambda: core.history_rounds >= until, timeout, f"{count} follower rounds")

    # the recording test channel ---------------------------------------------------------------------
    async def say(self, sender: str, text: str, *, id: str | None = None, **extra: Any) -> int:
        """Post one message to the test channel's webhook; the HTTP status."""
        self._said += 1
        body = {"id": id or f"u{self._said}", "from": sender, "text": text, **extra}
        response = await self.client.post(
            f"/webhooks/{self.channel.name}", data=json.dumps(body), headers={"X-Test-Secret": TEST_SECRET}
        )
        return response.status

    async def replies(self, sender: str, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until ``sender`` got ``count`` parts on the test channel; return all their texts."""
        channel: RecordingChannel = self.channel
        await eventually(
            lambda: len(channel.texts_to(sender)) >= count, timeout, f"{count} replies to {sender}"
        )
        return channel.texts_to(sender)

    # Telegram ---------------------------------------------------------------------------------------
    async def post_update(
        self, update: dict[str, Any], secret: str | None = TELEGRAM_SECRET
    ) -> ClientResponse:
        """Post a Telegram update to the webhook, with the secret header (unless ``None``)."""
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        return await self.client.post("/webhooks/telegram", json=update, headers=headers)

    async def deliver_update(self, update: dict[str, Any]) -> None:
        response = await self.post_update(update)
        assert response.status == 200, await response.text()

    # Twilio -----------------------------------------------------------------------------------------
    async def post_form(
        self,
        form: MultiDict[str],
        *,
        path: str = "/webhooks/twilio",
        signature: str | object | None = None,
        signed_url: str | None = None,
        token: str = AUTH_TOKEN,
        content_type: str = FORM,
    ) -> ClientResponse:
        """Post ``form`` signed like Twilio (over ``public_url + path`` unless told otherwise); a
        ``signature`` string is sent as it is, any other object (``Unsigned``) sends none."""
        headers = {"Content-Type": content_type}
        if signature is None:
            headers["X-Twilio-Signature"] = sign(signed_url or self.public_url + path, form, token)
        elif isinstance(signature, str):
            headers["X-Twilio-Signature"] = signature
        return await self.client.post(path, data=urlencode(list(form.items())), headers=headers)

    async def deliver_form(self, form: MultiDict[str], path: str = "/webhooks/twilio") -> None:
        response = await self.post_form(form, path=path)
        assert response.status == 200, await response.text()

    async def report(self, form: MultiDict[str]) -> None:
        """A Twilio status callback."""
        await self.deliver_form(form, path="/webhooks/twilio/status")


@contextlib.asynccontextmanager
async def start_bridge(
    settings: Settings,
    given: Iterable[Channel] = (),
    *,
    ocs: FakeOCS | None = None,
    tg: FakeTelegram | None = None,
    tw: FakeTwilio | None = None,
    kinds: Iterable[str] | None = None,
    plugins: Iterable[Plugin] = (),
    workers: bool = True,
) -> AsyncIterator[Harness]:
    """The app started with ``settings``' channels (``given`` ones as they are, others of ``kinds``
    built); closed on exit."""
    channels = build_channels(settings, given, kinds)
    app = create_app(settings, channels, plugins=plugins, workers=workers)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Harness(client, settings, channels, ocs, tg, tw)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def platform_bridge(
    database: Path,
    *,
    ocs: FakeOCS | None = None,
    tg: FakeTelegram | None = None,
    tw: FakeTwilio | None = None,
    **env: str,
) -> AsyncIterator[Harness]:
    """A bridge configured from the environment (``environment(...)``) with the channels of the given
    platform fakes (Telegram, Twilio), on them."""
    settings = load_settings(environment(database, ocs=ocs, tg=tg, tw=tw, **env))
    kinds = [kind for kind, fake in (("telegram", tg), ("twilio", tw)) if fake is not None]
    async with start_bridge(settings, ocs=ocs, tg=tg, tw=tw, kinds=kinds) as harness:
        yield harness
