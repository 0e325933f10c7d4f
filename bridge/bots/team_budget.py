"""One request budget per OCS team, shared by every process of the bridge.

OCS counts every API request of a team (session creates, ``incoming_message``, history reads,
ends) in fixed windows (2000 per 5 minutes) and answers 429 above it. The bridge counts the same
way before it asks, in the store (``bridge.store.budget``) so that every process draws on one
count: a message (or a request on its path) waits for the budget; a history read only takes from
what messages leave over (below ``limit * (1 - reserve)``, and none within a window of a message
having waited for the budget), and is otherwise put off with the time to come back. Each answer's
``X-RateLimit-Remaining`` raises the count to the server's (and a lower ``X-RateLimit-Limit``
lowers the budget) when the server's window is the bridge's; whatever its window, a server with
nothing left (``Remaining`` 0) or a 429 pauses the whole team until its ``Reset``/``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Mapping
from datetime import timedelta

import structlog

from bridge.bots.base import BotError
from bridge.metrics import Metrics
from bridge.store.budget import BudgetRow, Rate, SharedBudget, Taken, take
from bridge.store.repo import Store
from bridge.store.tables import utcnow

log = structlog.get_logger("bridge.bots")

READS_RESERVE = 0.25  # of each window, never taken by history reads
LOCAL: dict[str, BudgetRow] = {}


class TeamBudget:
    def __init__(self, base_url: str, api_key: str, limit: int, window: float):
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self.key = f"ocs:{base_url}:{digest}"[:255]  # one key is one team's user
        self.rate = Rate(limit, window, READS_RESERVE)
        self.shared: SharedBudget | None = None
        # without a shared store: one count per team in this process (bots may share a key)
        self.local = LOCAL.setdefault(self.key, BudgetRow(key=self.key, window=0, used=0, late=0))
        self.seen: tuple[int, int | None] = (0, None)  # the count and the server's limit last known
        self.metrics: Metrics | None = None
        self.name = ""
        # A process takes requests from the shared count a block at a time (2 % of a window): the
        # count may run ahead of what is sent by a block per process, never behind it.
        self.block = max(1, limit // 50)
        self.pool: tuple[int, int] = (-1, 0)  # (window, requests left) this process took
        self._refill = asyncio.Lock()

    def attach(self, store: Store, metrics: Metrics, name: str) -> None:
        """Share the count through ``store`` (PostgreSQL: an SQLite database has one process);
        report it as bot ``name``'s in ``metrics``."""
        self.shared = SharedBudget(store) if store.is_postgres else None
        self.metrics, self.name = metrics, name
        metrics.bot_budget_limit.labels(name).set(self.rate.limit)

    async def _take(self, spare: bool) -> Taken:
        if self.shared is not None:
            taken = await self._take_shared(spare)
        else:
            taken = take(self.local, self.rate, spare, time.time(), utcnow())
        self.seen = (taken.used, self.local.ceiling if self.shared is None else self.seen[1])
        if self.metrics is not None:
            self.metrics.bot_budget_used.labels(self.name).set(taken.used)
        return taken

    async def _take_shared(self, spare: bool) -> Taken:
        """A message's request comes from this process's pool, refilled a block at a time from the
        shared count (one write per block, not per request); a history read asks the count itself."""
        assert self.shared is not None
        if spare:
            return await self.shared.take(self.key, self.rate, spare)
        async with self._refill:
            index, left = self.pool
            if index == self.rate.index(time.time()) and left > 0:
                self.pool = (index, left - 1)
                return Taken(0.0, self.seen[0])
            index = self.rate.index(time.time())
            taken = await self.shared.take(self.key, self.rate, spare, want=self.block)
            self.pool = (index, taken.granted - 1) if not taken.wait else (index, 0)
            return taken

    def _count(self, metric: str, kind: str) -> None:
        if self.metrics is not None:
            getattr(self.metrics, metric).labels(self.name, kind).inc()

    async def take(self, kind: str) -> None:
        """One request for a message (or on its path): wait until the budget has one."""
        waited = False
        while (taken := await self._take(spare=False)).wait:
            if not waited:
                self._count("bot_budget_waits", kind)
                log.info("OCS request budget spent; waiting", seconds=round(taken.wait, 1), kind=kind)
            waited = True
            await asyncio.sleep(taken.wait + random.uniform(0, 0.05))  # (not all at the same instant)
        self._count("bot_requests", kind)

    async def take_spare(self, kind: str) -> None:
        """One request only from what messages leave over; otherwise a retryable ``BotError``."""
        taken = await self._take(spare=True)
        if taken.wait:
            self._count("bot_budget_waits", kind)
            reason = "the OCS team's request budget is kept for messages"
            raise BotError(reason, retryable=True, retry_after=taken.wait)
        self._count("bot_requests", kind)

    async def answered(self, status: int, raw: bytes, headers: Mapping[str, str]) -> None:
        """Follow the server's count (``X-RateLimit-*``) and its 429 (the team waits)."""
        ceiling, used = self._server_count(headers)
        pause = spent_until(headers)  # nothing left: the next request would be refused
        if status == 429:
            pause = retry_after(raw, headers) or 1.0
            if self.metrics is not None:
                self.metrics.bot_rate_limited.labels(self.name).inc()
            log.warning("OCS rate limit reached; the team's requests pause", seconds=pause)
        if pause is not None:
            self.pool = (-1, 0)  # what this process took is not to be sent before the pause ends
        elif ceiling is None or ((used is None or used <= self.seen[0]) and ceiling == self.seen[1]):
            return  # nothing the count does not know
        until = utcnow() + timedelta(seconds=pause) if pause is not None else None
        self.seen = (max(used or 0, self.seen[0]), ceiling if ceiling is not None else self.seen[1])
        if self.shared is not None:
            await self.shared.observed(self.key, self.rate, used or 0, ceiling, until)
            return
        if used is not None and self.local.window == self.rate.index(time.time()):
            self.local.used = max(self.local.used, used)
        if ceiling is not None:
            self.local.ceiling = ceiling if ceiling < self.rate.limit else None
        self.local.paused_until = until or self.local.paused_until

    def _server_count(self, headers: Mapping[str, str]) -> tuple[int | None, int | None]:
        """The server's limit and the requests it counted in this window (``X-RateLimit-*``);
        neither for an answer counted in another window (its ``Reset`` names when that one ends):
        a server whose window is not the bridge's has a limit that does not compare with its own."""
        try:
            limit = int(headers["X-RateLimit-Limit"])
            used = limit - int(headers["X-RateLimit-Remaining"])
        except (KeyError, ValueError):
            return None, None
        try:  # OCS counts whole seconds: its window ends between now + reset - 1 and now + reset
            now = time.time()
            left = self.rate.ends(self.rate.index(now), now)
            if abs(float(headers["X-RateLimit-Reset"]) - left) > 1.5:
                return None, None
        except (KeyError, ValueError):
            pass
        return limit, used


def parse_rate(rate: str) -> tuple[int, float]:
    """OCS's notation of a rate (``2000/5m``, ``2000/300s``, ``10/s``): (requests, seconds)."""
    count, _, window = rate.partition("/")
    return int(count), float({"s": 1, "m": 60, "h": 3600}[window[-1]] * int(window[:-1] or 1))


def spent_until(headers: Mapping[str, str]) -> float | None:
    """Seconds until the server's window ends when it has nothing left in it (``X-RateLimit-Remaining``
    0 and its ``Reset``), whatever the bridge's own window; otherwise None."""
    try:
        return float(headers["X-RateLimit-Reset"]) if int(headers["X-RateLimit-Remaining"]) <= 0 else None
    except (KeyError, ValueError):
        return None


def retry_after(raw: bytes, headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` (seconds), or the body's ``available_in``."""
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        pass
    try:
        value = json.loads(raw).get("available_in")
        return float(value) if value is not None else None
    except (ValueError, AttributeError, TypeError):
        return None
