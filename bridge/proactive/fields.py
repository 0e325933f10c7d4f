"""Reading request fields with OCS's own (Django REST framework) wording in the ``detail``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bridge.errors import BadRequest
from bridge.store.records import clean_text

REQUIRED = "This field is required."
DATE_FORMAT = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)


def invalid(name: str, message: str) -> BadRequest:
    return BadRequest(f"{name}: {message}")


def text(body: dict[str, Any], name: str, *, required: bool = False, limit: int | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(name, REQUIRED)
        return None
    if not isinstance(value, str):
        raise invalid(name, "Not a valid string.")
    if not value.strip():
        raise invalid(name, "This field may not be blank.")
    if limit is not None and len(value) > limit:
        raise invalid(name, f"Ensure this field has no more than {limit} characters.")
    return clean_text(value)


def query(values: Mapping[str, str], name: str) -> str | None:
    """A query parameter to filter by (None when absent or empty)."""
    value = values.get(name)
    return clean_text(value) if value else None


def required_text(body: dict[str, Any], name: str, *, limit: int | None = None) -> str:
    value = text(body, name, required=True, limit=limit)
    assert value is not None
    return value


def mapping(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid(name, f'Expected a dictionary of items but got type "{type(value).__name__}".')
    return value


def boolean(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise invalid(name, "Must be a valid boolean.")
    return value


def items(body: dict[str, Any], name: str, *, required: bool = False) -> list[dict[str, Any]]:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid(name, REQUIRED)
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid(name, f'Expected a list of items but got type "{type(value).__name__}".')
    return value


def when(body: dict[str, Any], name: str) -> datetime | None:
    """An ISO 8601 date and time, in UTC (UTC too when it names no zone)."""
    value = body.get(name)
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value) if isinstance(value, str) else None
        if at is not None:
            return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or one UTC cannot hold (year 1, east of UTC)
        pass
    raise invalid(name, DATE_FORMAT)
