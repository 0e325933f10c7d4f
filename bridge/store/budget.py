"""A bot team's request budget in the store, shared by every process: the requests counted in the
current window (fixed windows from the epoch, as OCS counts), until when the team is paused
(a 429), and when a message last had to wait for it (history reads wait a window after that)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Connection, Integer, String, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from bridge.store.tables import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from bridge.store.repo import Store


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
    granted: int = 1  # requests taken (a block of them for a process's own pool; 0 when waiting)


def take(row: BudgetRow, rate: Rate, spare: bool, wall: float, now: datetime, want: int = 1) -> Taken:
    """Take up to ``want`` requests from ``row`` (changed in place), or say how long to wait. A history read
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
        granted = min(want, limit - row.used)
        row.used += granted
        row.late += granted if rate.ends(index, wall) < rate.edge else 0
        return Taken(0.0, row.used, granted)
    else:
        wait = rate.ends(index, wall)
    if not spare:
        row.waited_at = now
    return Taken(wait, row.used, 0)


B = BudgetRow.__table__.c


class SharedBudget:
    """The budget rows of one store: each take and each server count is one Writer operation (on
    PostgreSQL, the row is locked for the transaction, so processes take from one count)."""

    def __init__(self, store: Store):
        self.store = store

    async def take(self, key: str, rate: Rate, spare: bool, want: int = 1) -> Taken:
        operation = functools.partial(_take, key=key, rate=rate, spare=spare, want=want)
        return await self.store.writer(operation, urgent=not spare)  # a message's request waits on it

    async def observed(
        self, key: str, rate: Rate, used: int, ceiling: int | None, paused_until: datetime | None
    ) -> None:
        """The server counted ``used`` requests in this window (never fewer than counted here) of
        its ``ceiling``; with ``paused_until``, it refused one: nothing is sent for the team until then."""
        values: dict[str, object] = {"used": case((B.used < used, used), else_=B.used)}
        if ceiling is not None:
            values["ceiling"] = ceiling if ceiling < rate.limit else None
        if paused_until is not None:
            values["paused_until"] = paused_until
        window = rate.index(time.time())

        def observe(connection: Connection) -> None:
            connection.execute(update(BudgetRow).where(B.key == key, B.window == window).values(**values))
            if paused_until is not None:  # (a new window's row too)
                connection.execute(update(BudgetRow).where(B.key == key).values(paused_until=paused_until))

        await self.store.writer(observe)


_FIELDS = ("window", "used", "late", "ceiling", "paused_until", "waited_at")


def _take(connection: Connection, key: str, rate: Rate, spare: bool, want: int) -> Taken:
    """A Writer operation: the row (created if missing, locked on PostgreSQL), taken from, written back."""
    postgres = connection.dialect.name == "postgresql"
    query = select(*(B[f] for f in _FIELDS)).where(B.key == key)
    found = connection.execute(query.with_for_update() if postgres else query).first()
    if found is None:
        insert = (pg_insert if postgres else sqlite_insert)(BudgetRow).values(
            key=key, window=0, used=0, late=0
        )
        connection.execute(insert.on_conflict_do_nothing())
        found = connection.execute(query.with_for_update() if postgres else query).one()
    row = BudgetRow(key=key, **found._mapping)
    taken = take(row, rate, spare, time.time(), utcnow(), want)
    connection.execute(update(BudgetRow).where(B.key == key).values({f: getattr(row, f) for f in _FIELDS}))
    return taken
