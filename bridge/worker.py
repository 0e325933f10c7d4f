"""Delivery workers: claim conversations and run each one (``bridge.conversation``) as a task.

A conversation waiting on its bot costs a coroutine and the memory of its pending work, nothing
scarcer: one process holds up to ``WORKER_CONCURRENCY`` of them, and what bounds the requests in
flight to a bot backend is that bot's own ``max_in_flight`` (a semaphore here, the size of its
HTTP connection pool there). A conversation that has to wait (a retry, a backoff, a flood limit
longer than a moment) is let go with the time to come back, holding nothing. One heartbeat
statement renews every lease this worker holds, ahead of every other write of the process.

A conversation runs once per process: a claim that returns a conversation already running here
only took its own lease again (it ran out while a renewal was late, or the run let go in that same
transaction); the run keeps going, and once it ends the conversation is read again and resumed if
this worker still holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import structlog

from bridge.conversation import ConversationRun
from bridge.store import heartbeats
from bridge.store.db import DATABASE_ERRORS, short
from bridge.store.queue import Claim, Queue

if TYPE_CHECKING:
    from bridge.core import Core

log = structlog.get_logger("bridge.worker")

CLAIM_BATCH = 500  # conversations claimed in one statement
CLAIM_WARNING_EVERY = 30.0  # seconds


class Worker:
    def __init__(self, core: Core, owner: str):
        self.core = core
        self.config = core.settings.worker
        self.queue = Queue(core.store, owner, self.config.lease_seconds)
        self.bot_slots = {
            name: asyncio.Semaphore(core.settings.bots[name].max_in_flight) for name in core.bots
        }
        self.wakeup = asyncio.Event()
        self.active: dict[int, asyncio.Task[None]] = {}
        self.stopping = False
        self.running = False
        self._retaken: set[int] = set()  # running conversations claimed again (see ``_spawn``)
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()  # its loop is over: stopped, or died (``chatbridge worker`` exits)
        self._last_claim_warning = -CLAIM_WARNING_EVERY

    async def run(self) -> None:
        self.running = True
        self._heartbeat_task = asyncio.create_task(self._heartbeat(), name="worker-heartbeat")
        try:
            while not self.stopping:
                self.wakeup.clear()
                free = self.config.concurrency - len(self.active)
                claimed: list[Claim] = []
                if free > 0:
                    try:
                        claimed = await self.queue.claim(min(free, CLAIM_BATCH))
                    except Exception as exc:
                        self._claim_failed(exc)
                    for claim in claimed:
                        self._spawn(claim)
                if claimed and len(claimed) == min(free, CLAIM_BATCH):
                    continue  # more may be due right now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), self.config.poll_interval)
        finally:
            self.running = False
            if not self.stopping:  # died (a bug): it must not look alive (see ``stop``)
                await self.stop(0)
            self.ended.set()

    def _claim_failed(self, exc: Exception) -> None:
        """The database gone away: one short line every 30 s, not a traceback a second."""
        if not isinstance(exc, DATABASE_ERRORS):
            log.exception("claim failed")
        elif time.monotonic() - self._last_claim_warning > CLAIM_WARNING_EVERY:
            self._last_claim_warning = time.monotonic()
            log.warning("cannot claim work: database unavailable", error=short(exc))

    def _spawn(self, claim: Claim) -> None:
        conversation_id = claim.conversation.id
        if conversation_id in self.active:
            # Our own lease, taken again (it ran out while the run was busy, or the run let go in the
            # transaction of this claim): the run keeps going; once it ends, what is held is resumed.
            self._retaken.add(conversation_id)
            return
        self._start(conversation_id, ConversationRun(self, claim).run())

    def _start(self, conversation_id: int, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"conversation-{conversation_id}")
        self.active[conversation_id] = task

        def done(_: asyncio.Task[None]) -> None:
            self.active.pop(conversation_id, None)
            if conversation_id in self._retaken:
                self._retaken.discard(conversation_id)
                if not self.stopping:  # (stopping: the lease runs out for another worker)
                    self._start(conversation_id, self._resume(conversation_id))
            self.wakeup.set()

        task.add_done_callback(done)

    async def _resume(self, conversation_id: int) -> None:
        """Run a conversation claimed again while its run was ending, if this worker still holds it."""
        try:
            claim = await self.queue.reload(conversation_id)
        except Exception:
            log.exception("could not resume a conversation", conversation=conversation_id)
            return
        if claim is not None:
            await ConversationRun(self, claim).run()

    async def _heartbeat(self) -> None:
        """Renew the leases (in the very next write transaction: see ``Queue.renew``), then say
        this worker is alive; one failing does not stop the other, nor the next round."""
        while True:
            await asyncio.sleep(heartbeats.beat_interval(self.config.lease_seconds))
            if self.active:
                try:
                    await self.queue.renew()
                except Exception:
                    log.exception("lease renewal failed")
            try:
                await self.core.store.beat(self.queue.owner)  # /readyz: workers alive anywhere
            except Exception:
                log.exception("heartbeat failed")

    async def stop(self, grace: float) -> None:
        """Stop claiming; let in-flight conversations finish for ``grace`` seconds, then release them;
        stop beating and be forgotten."""
        self.stopping = True
        self.wakeup.set()
        tasks = list(self.active.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._heartbeat_task is not None:  # leases stay alive while in-flight work finishes
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        with contextlib.suppress(*DATABASE_ERRORS):  # /readyz anywhere: this worker is gone at once
            await self.core.store.forget_worker(self.queue.owner)
