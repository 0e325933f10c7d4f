"""Pacing requests to a rate-limited bot backend (open.cx: about 100 requests a minute)."""

from __future__ import annotations

import asyncio
import time

from bridge.bots.base import BotError


class Budget:
    """A token bucket of ``per_minute`` requests. Messages wait for a token; history reads only
    take one while more than ``reserve`` are left, and otherwise are told to come back later."""

    def __init__(self, per_minute: int, reserve: float = 0.5):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.reserve = self.capacity * reserve
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def take(self) -> None:
        while True:
            self._refill()
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)

    def take_spare(self) -> None:
        self._refill()
        if self.tokens < self.reserve + 1:
            wait = (self.reserve + 1 - self.tokens) / self.rate
            raise BotError("the bot's request budget is kept for messages", retryable=True, retry_after=wait)
        self.tokens -= 1

    def exhausted(self) -> None:
        """The server said 429: nothing more until the bucket fills again."""
        self.tokens = 0.0
        self.updated = time.monotonic()
