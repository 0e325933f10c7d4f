"""Group commit: the writes of one process share transactions.

Every caller hands ``Writer`` a small operation (SQL on a connection, nothing else: a plain
function, no awaiting inside) and awaits its result. Whatever queued up while the previous
transaction ran goes into the next one, committed once: under a burst, hundreds of webhooks and
worker outcomes cost a few commits instead of hundreds. Lease renewals never queue behind them (a
late one lets another worker take a conversation still being answered): they have a short
transaction of their own, the very next one, however many writes wait. Of the rest, urgent
operations (storing an inbound message before its webhook is acknowledged) go first, so
acknowledgements never queue behind the workers' writes. If an operation fails, the transaction is
rolled back and each operation of the batch runs again in a transaction of its own, so one bad
write fails only its own caller.

One transaction runs at a time. SQLite has one writer anyway: each transaction runs whole in a
thread of its own with a plain ``sqlite3`` connection (one hand-off per batch rather than one per
statement, and no waiting in SQLite's busy handler). On PostgreSQL, transactions side by side
wait on each other's row locks (``make bench`` answered 70 messages a second with four, 235 with
one), so there too the next batch waits for the one running.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
Operation = Callable[[Connection], T]
MAX_BATCH = 500


@dataclass(slots=True)
class _Pending:
    operation: Operation[Any]
    future: asyncio.Future[Any]


class Writer:
    def __init__(self, engine: AsyncEngine, sqlite: Engine | None):
        self.engine = engine
        self.sqlite = sqlite  # SQLite: a synchronous engine on the same file, used from one thread
        self.lock = asyncio.Lock()  # held while a transaction runs
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer") if sqlite else None
        self._lease: deque[_Pending] = deque()
        self._urgent: deque[_Pending] = deque()
        self._normal: deque[_Pending] = deque()
        self._running: asyncio.Task[None] | None = None

    async def __call__(self, operation: Operation[T], *, urgent: bool = False, lease: bool = False) -> T:
        """Run ``operation`` in the next shared transaction; its result once that has committed.
        ``lease``: a lease renewal, in the very next transaction; ``urgent``: ahead of the rest."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # a cancelled caller's failure is not "never retrieved"
        lane = self._lease if lease else self._urgent if urgent else self._normal
        lane.append(_Pending(operation, future))
        self._kick()
        return await asyncio.shield(future)  # a cancelled caller's write still lands (or fails) whole

    async def close(self) -> None:
        """Finish what is queued, then let the thread go."""
        while self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self.sqlite is not None:
            self.sqlite.dispose()

    def _kick(self) -> None:
        if self._running is None and (self._lease or self._urgent or self._normal):
            self._running = asyncio.create_task(self._flush(self._take()), name="store-writer")
            self._running.add_done_callback(self._done)

    def _done(self, _: asyncio.Task[None]) -> None:
        self._running = None
        self._kick()

    def _take(self) -> list[_Pending]:
        if self._lease:  # renewals alone: a short transaction, whatever else is queued
            return [self._lease.popleft() for _ in range(len(self._lease))]
        batch: list[_Pending] = []
        for queue in (self._urgent, self._normal):
            while queue and len(batch) < MAX_BATCH:
                batch.append(queue.popleft())
        return batch

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            results = await self._transaction([pending.operation for pending in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, exc=exc)
                return
            for one in batch:  # find the one that failed; the others still land
                await self._flush([one])
            return
        for pending, result in zip(batch, results, strict=True):
            _settle(pending.future, result=result)

    async def _transaction(self, operations: list[Operation[Any]]) -> list[Any]:
        async with self.lock:
            if self.sqlite is None:
                async with self.engine.begin() as connection:
                    return await connection.run_sync(_apply, operations)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, _in_thread, self.sqlite, operations)


def _in_thread(engine: Engine, operations: list[Operation[Any]]) -> list[Any]:
    with engine.begin() as connection:
        return _apply(connection, operations)


def _apply(connection: Connection, operations: list[Operation[Any]]) -> list[Any]:
    return [operation(connection) for operation in operations]


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future[Any], *, result: Any = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
