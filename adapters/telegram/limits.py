"""Telegram's flood limits, kept in this process: per chat, per group and per bot.

Telegram asks for about 1 message a second in one chat, 20 a minute in one group and 30 a
second overall. ``Limiter.reserve`` says how long to wait before the next message to a chat and,
when it answers 0, counts that message. A 429 from Telegram pauses the chat (or the whole bot)
for its ``retry_after``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Window:
    """At most ``limit`` events in any ``period`` seconds (a sliding window)."""

    limit: int
    period: float
    events: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        while self.events and self.events[0] <= now - self.period:
            self.events.popleft()
        if len(self.events) < self.limit:
            return 0.0
        return self.events[-self.limit] + self.period - now

    def add(self, now: float) -> None:
        self.events.append(now)


@dataclass(frozen=True, slots=True)
class Rates:
    per_chat: float = 1.0  # messages a second in one chat
    per_group: int = 20  # messages a minute in one group
    per_bot: int = 30  # messages a second overall


class Limiter:
    """Rate limits for one bot. ``chat`` ids of groups are negative (Telegram's convention)."""

    def __init__(self, rates: Rates, clock: Callable[[], float] = time.monotonic):
        self.rates = rates
        self.clock = clock
        self._bot = Window(rates.per_bot, 1.0)
        self._chats: dict[str, Window] = {}
        self._groups: dict[str, Window] = {}
        self._paused: dict[str, float] = {}  # chat (or "*" for the bot) -> monotonic time

    def reserve(self, chat: str) -> float:
        """Seconds to wait before sending to ``chat``; 0 means go now (and it is counted)."""
        now = self.clock()
        windows = [self._bot, self._window(self._chats, chat, 1, 1.0 / self.rates.per_chat)]
        if chat.startswith("-"):
            windows.append(self._window(self._groups, chat, self.rates.per_group, 60.0))
        paused = max(self._paused.get(chat, 0.0), self._paused.get("*", 0.0)) - now
        wait = max([paused, *(w.wait(now) for w in windows)])
        if wait > 0:
            return wait
        for w in windows:
            w.add(now)
        return 0.0

    def pause(self, chat: str, seconds: float) -> None:
        """Telegram said 429: nothing goes to ``chat`` (``"*"``: to anyone) for ``seconds``."""
        until = self.clock() + seconds
        self._paused[chat] = max(self._paused.get(chat, 0.0), until)

    def paused(self, chat: str) -> bool:
        now = self.clock()
        return max(self._paused.get(chat, 0.0), self._paused.get("*", 0.0)) > now

    def _window(self, windows: dict[str, Window], chat: str, limit: int, period: float) -> Window:
        window = windows.get(chat)
        if window is None:
            if len(windows) > 10_000:  # forget idle chats now and then
                now = self.clock()
                for key in [k for k, w in windows.items() if not w.events or w.events[-1] < now - 60]:
                    del windows[key]
            window = windows[chat] = Window(limit, period)
        return window
