"""How often worker processes say they are alive, and how soon ``/readyz`` notices one is gone."""

from __future__ import annotations

import functools

from sqlalchemy import Connection, delete

from bridge.store.repo import Store
from bridge.store.tables import HeartbeatRow

BEAT_SECONDS = 2.0  # at most; a shorter lease beats more often


def beat_interval(lease_seconds: float) -> float:
    """Seconds between a worker's heartbeats (which also renew its leases)."""
    return min(lease_seconds / 4, BEAT_SECONDS)


def silent_after(lease_seconds: float) -> float:
    """A worker that has not beaten for this long (three beats missed) counts as dead."""
    return 3 * beat_interval(lease_seconds)


async def forget(store: Store, owner: str) -> None:
    """A worker stopping cleanly: it is not alive any more, at once."""
    await store.writer(functools.partial(_forget, owner=owner))


def _forget(connection: Connection, owner: str) -> None:
    connection.execute(delete(HeartbeatRow).where(HeartbeatRow.owner == owner))
