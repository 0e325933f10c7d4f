"""The fake OCS server's records: what it received and the sessions it keeps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

FailureKind = Literal[500, 502, 503, 504, 429, "timeout", "drop"]
Attachment = tuple[str, Path | bytes]
"""``(file_name, content)``: a file to serve, or its bytes."""
ReplyResult = str | tuple[str, list[Attachment]]
ReplyFn = Callable[[str, "FakeSession"], ReplyResult | Awaitable[ReplyResult]]

NOT_FOUND = {"detail": "Not found."}
ERROR_REPLY = "Sorry, something went wrong while processing your message. Please try again later."
DJANGO_500 = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n'
    "<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
)
_INVALID = object()
_GATEWAY = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


@dataclass(frozen=True)
class Call:
    """One request the fake received (recorded before authentication)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class FakeMessage:
    role: Literal["user", "assistant"]
    content: str
    created_at: str
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeSession:
    id: str
    experiment: str
    state: dict[str, Any]
    owner_key: str
    ended: bool = False
    participant: str | None = None
    messages: list[FakeMessage] = field(default_factory=list)
    created_at: str = ""
    fail_next_message: bool = False


@dataclass
class _Failure:
    kind: FailureKind
    on: str


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _default_reply(text: str, session: FakeSession) -> ReplyResult:
    return f"bot: {text}"


def _html(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/html")


def session_json(base: str, s: FakeSession, *, with_messages: bool) -> dict[str, Any]:
    """A session as OCS's ``GET /api/sessions/{id}/`` shows it."""
    data: dict[str, Any] = {
        "url": f"{base}/api/sessions/{s.id}/",
        "id": s.id,
        "team": {"name": "Fake team", "slug": "fake-team"},
        "experiment": experiment_json(base, s.experiment),
        "participant": {"identifier": s.participant or "api-user@example.com"},
        "created_at": s.created_at,
        "updated_at": s.messages[-1].created_at if s.messages else s.created_at,
        "status": "complete" if s.ended else "active",
        "platform": "api",
        "tags": [],
        "state": s.state,
    }
    if with_messages:
        data["messages"] = [
            {
                "created_at": m.created_at,
                "role": m.role,
                "content": m.content,
                "metadata": {},
                "tags": [],
                "attachments": m.attachments,
            }
            for m in s.messages
        ]
    return data


def experiment_json(base: str, experiment: str) -> dict[str, Any]:
    return {"id": experiment, "name": "Fake bot", "url": f"{base}/api/experiments/{experiment}/"}
