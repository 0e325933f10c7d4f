"""The running core: store, bots, channels and workers, as the HTTP app and adapters see them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import structlog

from bridge.bots import Bot
from bridge.channel import Channel
from bridge.logs import mask
from bridge.metrics import Metrics
from bridge.model import InboundMessage
from bridge.settings import Settings
from bridge.store import Store
from bridge.store.records import Accepted

if TYPE_CHECKING:
    from bridge.worker import Worker

log = structlog.get_logger("bridge.core")

__all__ = ["Accepted", "Core"]


@dataclass
class Core:
    settings: Settings
    store: Store
    http: aiohttp.ClientSession
    channels: dict[str, Channel]
    bots: dict[str, Bot]
    metrics: Metrics = field(default_factory=Metrics)
    workers: list[Worker] = field(default_factory=list)  # the Worker of this process, if it runs one
    # conversations whose history a bot's event says has something new (the follower reads them)
    history_due: set[int] = field(default_factory=set)
    history_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def accept(self, messages: Sequence[InboundMessage]) -> list[Accepted]:
        """Store messages durably (each in one transaction) and wake the workers."""
        accepted = []
        for message in messages:
            channel = self.channels.get(message.channel)
            unblock = channel.capabilities.unblock_on_message if channel else True
            held = channel.capabilities.holds_until_written if channel else False
            result = await self.store.accept(message, unblock=unblock, release_held=held)
            accepted.append(result)
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
        if any(not a.duplicate for a in accepted):
            self.wake()
        return accepted

    def read_history_soon(self, conversation_id: int) -> None:
        """Have this process's follower read the conversation's history at once."""
        self.history_due.add(conversation_id)
        self.history_event.set()

    def wake(self) -> None:
        for worker in self.workers:
            worker.wakeup.set()
