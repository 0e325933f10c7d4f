"""Group commit: the writes of one process share transactions.

Every caller hands ``Writer`` a small operation (SQL on a connection, nothing else) and awaits its
result. One flusher task runs whatever has queued up in one transaction and commits once: under a
burst, hundreds of webhooks and worker outcomes cost one commit instead of hundreds, and on SQLite
(one writer at a time) nobody waits in SQLite's busy handler. Urgent operations (storing an inbound
message before its webhook is acknowledged) go first, so acknowledgements never queue behind the
workers' writes. If an operation fails, the transaction is rolled back and each operation of the
batch runs again in a transaction of its own, so one bad write fails only its own caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger("bridge.store")

T = TypeVar("T")
Operation = Callable[[AsyncConnection], Awaitable[T]]
MAX_BATCH = 500


@dataclass(slots=True)
class _Pending:
    operation: Operation[Any]
    future: asyncio.Future[Any]


class Writer:
    def __init__(self, engine: AsyncEngine, lock: asyncio.Lock | None):
        self.engine = engine
        self.lock = lock  # SQLite: shared with the store's other writers
        self._urgent: deque[_Pending] = deque()
        self._normal: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, operation: Operation[T], *, urgent: bool = False) -> T:
        """Run ``operation`` in the next shared transaction; its result once that has committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # a cancelled caller's failure is not "never retrieved"
        (self._urgent if urgent else self._normal).append(_Pending(operation, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_forever(), name="store-writer")
        return await asyncio.shield(future)  # a cancelled caller's write still lands (or fails) whole

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        while self._urgent or self._normal:
            await asyncio.sleep(0.001)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._urgent or self._normal:
                await self._flush(self._take())

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        for queue in (self._urgent, self._normal):
            while queue and len(batch) < MAX_BATCH:
                batch.append(queue.popleft())
        return batch

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            results = await self._transaction(batch)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, exc=exc)
                return
            for one in batch:  # find the one that failed; the others still land
                await self._flush([one])
            return
        for pending, result in zip(batch, results, strict=True):
            _settle(pending.future, result=result)

    async def _transaction(self, batch: list[_Pending]) -> list[Any]:
        async with contextlib.AsyncExitStack() as stack:
            if self.lock is not None:
                await stack.enter_async_context(self.lock)
            connection = await stack.enter_async_context(self.engine.begin())
            return [await pending.operation(connection) for pending in batch]
        raise AssertionError("unreachable")  # pragma: no cover - for type checkers


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
