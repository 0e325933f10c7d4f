"""A bot team's request budget in the store, shared by every process: the requests counted in the
current window (fixed windows from the epoch, as OCS counts), until when the team is paused
(a 429), and whether a message waited for the budget in this window (history reads then wait)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, case, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.repo import Store
from bridge.store.tables import Base, UTCDateTime, utcnow


class BudgetRow(Base):
    __tablename__ = "bot_budgets"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, default=0)  # the window's number from the epoch
    used: Mapped[int] = mapped_column(Integer, default=0)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wanted: Mapped[int] = mapped_column(BigInteger, default=-1)  # the window a message waited in


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    window: float  # seconds
    reserve: float  # the share history reads leave to messages

    @property
    def grace(self) -> float:
        """How long into a window the messages that waited in the last one have it to themselves."""
        return min(5.0, self.window / 10)

    def index(self, now: float) -> int:
        return int(now // self.window)

    def ends(self, index: int, now: float) -> float:
        """Seconds until window ``index`` ends."""
        return max(0.0, (index + 1) * self.window - now)


@dataclass(frozen=True, slots=True)
class Taken:
    wait: float  # 0: taken; otherwise seconds until it may be, and nothing was taken
    used: int  # requests counted in this window


def take(row: BudgetRow, rate: Rate, spare: bool, wall: float, now: datetime) -> Taken:
    """Take one request from ``row`` (changed in place), or say how long to wait."""
    index = rate.index(wall)
    if row.window != index:
        row.window, row.used = index, 0
    if row.paused_until is not None and row.paused_until > now:
        return Taken((row.paused_until - now).total_seconds(), row.used)
    ceiling = rate.limit * (1 - rate.reserve) if spare else rate.limit
    # messages waited in this window, or in the last one and may not all have been answered yet
    wanted = row.wanted == index or (row.wanted == index - 1 and wall - index * rate.window < rate.grace)
    if row.used < ceiling and not (spare and wanted):
        row.used += 1
        return Taken(0.0, row.used)
    if not spare:
        row.wanted = index
    return Taken(rate.ends(index, wall), row.used)


class SharedBudget:
    """The budget rows of one store."""

    def __init__(self, store: Store):
        self.store = store

    async def take(self, key: str, rate: Rate, spare: bool) -> Taken:
        for _ in range(3):
            try:
                async with self.store.writing() as session:
                    row = await session.get(BudgetRow, key, with_for_update=self.store.is_postgres)
                    if row is None:
                        row = BudgetRow(key=key, window=0, used=0, wanted=-1)
                        session.add(row)
                    return take(row, rate, spare, time.time(), utcnow())
            except IntegrityError:  # another process created the row at the same moment
                continue
        return Taken(1.0, 0)

    async def observed(self, key: str, rate: Rate, used: int, paused_until: datetime | None) -> None:
        """The server counted ``used`` requests in this window (never fewer than counted here);
        with ``paused_until``, it refused one: nothing is sent for the team until then."""
        b = BudgetRow
        values: dict[str, object] = {"used": case((b.used < used, used), else_=b.used)}
        if paused_until is not None:
            values["paused_until"] = paused_until
        async with self.store.writing() as session:
            await session.execute(
                update(b).where(b.key == key, b.window == rate.index(time.time())).values(**values)
            )
            if paused_until is not None:  # (a new window's row too)
                await session.execute(update(b).where(b.key == key).values(paused_until=paused_until))
