"""A bot team's request budget in the store, shared by every process: the requests counted in the
current window (fixed windows from the epoch, as OCS counts), until when the team is paused
(a 429), and when a message last had to wait for it (history reads wait a window after that)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    late: Mapped[int] = mapped_column(Integer, default=0)  # taken in its last moment: may land in the next
    ceiling: Mapped[int | None] = mapped_column(Integer)  # the server's own limit, if lower
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a message last found none left


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    window: float  # seconds
    reserve: float  # the share history reads leave to messages

    @property
    def edge(self) -> float:
        """A request sent this close to the end of a window may land in the next one."""
        return min(2.0, self.window / 5)

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
    """Take one request from ``row`` (changed in place), or say how long to wait. A history read
    (``spare``) takes none while messages need them: above the reserve, or within a window of a
    message having had to wait (while messages wait, they try again at least once a window)."""
    index = rate.index(wall)
    if row.window != index:  # a new window: what was sent at the end of the last may count in it
        row.window, row.used, row.late = index, row.late if row.window == index - 1 else 0, 0
    limit = min(rate.limit, row.ceiling or rate.limit)
    if spare:
        limit = int(limit * (1 - rate.reserve))
        if row.waited_at is not None and now - row.waited_at < timedelta(seconds=rate.window):
            limit = 0
    if row.paused_until is not None and row.paused_until > now:
        wait = (row.paused_until - now).total_seconds()
    elif row.used < limit:
        row.used += 1
        row.late += 1 if rate.ends(index, wall) < rate.edge else 0
        return Taken(0.0, row.used)
    else:
        wait = rate.ends(index, wall)
    if not spare:
        row.waited_at = now
    return Taken(wait, row.used)


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
                        row = BudgetRow(key=key, window=0, used=0, late=0)
                        session.add(row)
                    return take(row, rate, spare, time.time(), utcnow())
            except IntegrityError:  # another process created the row at the same moment
                continue
        return Taken(1.0, 0)

    async def observed(
        self, key: str, rate: Rate, used: int, ceiling: int | None, paused_until: datetime | None
    ) -> None:
        """The server counted ``used`` requests in this window (never fewer than counted here) of
        its ``ceiling``; with ``paused_until``, it refused one: nothing is sent for the team until then."""
        b = BudgetRow
        values: dict[str, object] = {"used": case((b.used < used, used), else_=b.used)}
        if ceiling is not None:
            values["ceiling"] = ceiling if ceiling < rate.limit else None
        if paused_until is not None:
            values["paused_until"] = paused_until
        async with self.store.writing() as session:
            await session.execute(
                update(b).where(b.key == key, b.window == rate.index(time.time())).values(**values)
            )
            if paused_until is not None:  # (a new window's row too)
                await session.execute(update(b).where(b.key == key).values(paused_until=paused_until))
