"""The SQL store: the only package with SQL in it."""

from bridge.store.repo import Store, StoredMessage, StoredPart

__all__ = ["Store", "StoredMessage", "StoredPart"]
