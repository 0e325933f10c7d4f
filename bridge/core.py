"""The running core: store, bots, channels and workers, as the HTTP app sees them. Channels never
see it: they are given a ``ChannelContext`` (and report events back through it); the widget's routes
and Telegram's long polling get it as the narrow ``ChatHost`` and ``PollHost`` (bridge/channel.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from bridge.bots import Bot
from bridge.channel import Channel, ChannelContext
from bridge.logs import mask
from bridge.metrics import Metrics
from bridge.model import DeliveryReport, Event, InboundMessage, Received
from bridge.settings import Settings
from bridge.store import Store
from bridge.store.records import Accepted


class Running(Protocol):
    """A worker of this process, as the core and the app see it."""

    wakeup: asyncio.Event
    running: bool
    ended: asyncio.Event  # its loop is over (stopped, or died)

    async def stop(self, grace: float) -> None: ...


log = structlog.get_logger("bridge.core")

__all__ = ["Accepted", "Core"]


@dataclass
class Core:
    settings: Settings
    store: Store
    channels: dict[str, Channel]
    bots: dict[str, Bot]
    metrics: Metrics = field(default_factory=Metrics)
    workers: list[Running] = field(default_factory=list)  # the Worker of this process, if it runs one
    # conversations whose history a bot's event says has something new (the follower reads them)
    history_due: set[int] = field(default_factory=set)
    history_event: asyncio.Event = field(default_factory=asyncio.Event)
    history_rounds: int = 0  # rounds the follower finished (its reads done): tests wait on it, not time

    def context(self, channel: Channel) -> ChannelContext:
        """What ``channel`` is given at start."""

        async def report(events: Sequence[Event]) -> None:
            await self.receive(channel.name, Received(events=tuple(events)))

        return ChannelContext(
            base_url=self.settings.base_url,
            public_url=self.settings.public_url,
            data_dir=Path(self.settings.data_dir),
            bot=self.settings.bots.get(channel.bot),
            report=report,
        )

    async def receive(self, name: str, received: Received) -> list[Accepted]:
        """Store what one verified request carries, in one transaction, and wake the workers."""
        channel = self.channels.get(name)
        caps = channel.capabilities if channel is not None else None
        accepted = await self.store.receive(
            name,
            received,
            unblock=caps.unblock_on_message if caps else True,
            release_held=caps.holds_until_written if caps else False,
        )
        for message, result in zip(received.messages, accepted, strict=True):
            self._count(message, result)
        for event in received.events:
            if isinstance(event, DeliveryReport) and event.status in ("failed", "undelivered"):
                self.metrics.failed.labels(name, "platform").inc()
                log.warning("platform could not deliver", status=event.status, reason=event.reason)
        again = any(isinstance(e, DeliveryReport) and e.again is not None for e in received.events)
        if again or any(not a.duplicate for a in accepted):
            self.wake()
        return accepted

    def _count(self, message: InboundMessage, result: Accepted) -> None:
        if result.duplicate:
            self.metrics.duplicates.labels(message.channel).inc()
            log.info("duplicate ignored", message_id=result.public_id, channel=message.channel)
        else:
            self.metrics.received.labels(message.channel).inc()
            log.info(
                "message accepted",
                message_id=result.public_id,
                channel=message.channel,
                kind=message.kind.value,
                person=mask(message.person.key),
            )

    def read_history_soon(self, conversation_id: int) -> None:
        """Have this process's follower read the conversation's history at once."""
        self.history_due.add(conversation_id)
        self.history_event.set()

    def wake(self) -> None:
        for worker in self.workers:
            worker.wakeup.set()
