"""The SQL store: the only package with SQL in it."""

from bridge.store.records import StoredMessage, StoredPart
from bridge.store.repo import Store

__all__ = ["Store", "StoredMessage", "StoredPart"]
