"""How often worker processes say they are alive, and how soon ``/readyz`` notices one is gone."""

from __future__ import annotations

from sqlalchemy import Connection, delete

from bridge.store.tables import HeartbeatRow

BEAT_SECONDS = 2.0  # at most; a shorter lease beats more often


def beat_interval(lease_seconds: float) -> float:
    """Seconds between a worker's heartbeats (which also renew its leases)."""
    return min(lease_seconds / 4, BEAT_SECONDS)


def silent_after(lease_seconds: float) -> float:
    """A worker that has not beaten for this long (three beats missed) counts as dead."""
    return 3 * beat_interval(lease_seconds)


def forget(connection: Connection, owner: str) -> None:
    """A worker stopped (or its loop died): it is not alive any more, at once. (``Store.forget_worker``)"""
    connection.execute(delete(HeartbeatRow).where(HeartbeatRow.owner == owner))
