"""The fake OCS server's records: what it received, the sessions it keeps, and how OCS shows them
(as recorded from OCS at commit a77c545: ``/work/shared/recorded/ocs-a77c545/``)."""

from __future__ import annotations

import asyncio
import html
import math
import time
import uuid
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

EXPERIMENT = "bfe9a8c0-75b2-449b-8232-bcb97a71db0b"  # the recorded "Echo bot"
TEAM = {"name": "Bridge Team", "slug": "bridge-team"}
KEY = web.RequestKey("key", str)  # the request's API key
BODY: web.RequestKey[Any] = web.RequestKey("body", object)  # its JSON body
FAIL_500 = web.RequestKey("fail_500", bool)  # an injected 500, after the message is stored
NOT_FOUND = {"detail": "Not found."}
NO_EXPERIMENT = {"detail": "No Experiment matches the given query."}
NO_SESSION = {"detail": "No ExperimentSession matches the given query."}
ERROR_REPLY = "Sorry, something went wrong while processing your message. Please try again later"
OPEN_STATUSES = ("setup", "active")
DJANGO_500 = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n'
    "<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
)
_INVALID = object()
_GATEWAY = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}


@dataclass(frozen=True)
class Call:
    """One request the fake received (recorded before authentication), and its answer's status."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: list[int] = field(default_factory=list, compare=False)
    at: float = field(default_factory=time.time, compare=False)


@dataclass
class FakeMessage:
    role: Literal["user", "assistant"]
    content: str
    created_at: str
    attachments: list[dict[str, Any]] = field(default_factory=list)
    summary: str | None = None
    """OCS's compression: a summary of the history before this message, shown as a ``system``
    entry just before it, with its ``created_at``."""
    trace_id: int = 0
    """OCS's trace of the turn: a user message and the bot's answer to it share one."""


@dataclass
class FakeSession:
    id: str
    experiment: str
    state: dict[str, Any]
    owner: str
    """The participant: the API key's user (or the ``participant`` the session was created with)."""
    status: str = "setup"
    messages: list[FakeMessage] = field(default_factory=list)
    created_at: str = ""
    updated_at: str = ""
    impersonates: bool = False
    """Created with another ``participant`` than the key's user: every message answers 500."""
    platform: str | None = None
    """``"api"`` for a session the Chat API started; ``None`` for one made through ``/api/sessions/``."""
    remote_id: str = ""
    """The participant's remote id (the Chat API's ``participant_remote_id``)."""

    @property
    def ended(self) -> bool:
        return self.status not in OPEN_STATUSES

    @ended.setter
    def ended(self, value: bool) -> None:
        self.status = "pending-review" if value else "active"


@dataclass
class _Failure:
    kind: FailureKind
    on: str


@dataclass
class RateLimit:
    """OCS's per-team API limit: ``limit`` requests per fixed ``window`` (seconds, from the epoch),
    every request counted, refused ones too (``apps/utils/rate_limit.py``)."""

    limit: int
    window: float
    counts: dict[int, int] = field(default_factory=dict)

    def count(self) -> tuple[bool, dict[str, str]]:
        """Count one request: whether it is allowed, and the ``X-RateLimit-*`` headers."""
        now = time.time()
        window = int(now // self.window)
        used = self.counts[window] = self.counts.get(window, 0) + 1
        reset = max(1, math.ceil((window + 1) * self.window - now))
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - used)),
            "X-RateLimit-Reset": str(reset),
        }
        if used > self.limit:
            return False, headers | {"Retry-After": str(reset)}
        return True, headers


def is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _default_reply(text: str, session: FakeSession) -> ReplyResult:
    return f"bot: {text}"


def _html(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/html")


def error_page(title: str, exc: str) -> web.Response:
    """A runtime error as OCS answers it: a 500 HTML page naming the exception."""
    page = f"<html><head><title>{title}</title></head><body><pre>{html.escape(exc)}</pre></body></html>"
    return _html(500, page)


def _message_json(m: FakeMessage, role: str | None = None, content: str | None = None) -> dict[str, Any]:
    trace_url = f"/a/{TEAM['slug']}/traces/{m.trace_id}/"
    metadata: dict[str, Any] = {
        "trace_info": [{"trace_id": m.trace_id, "trace_url": trace_url, "trace_provider": "ocs"}]
    }
    if m.role == "user":
        metadata["ocs_attachment_file_ids"] = []
    return {
        "created_at": m.created_at,
        "role": role or m.role,
        "content": m.content if content is None else content,
        "metadata": metadata if role is None else {"compression_marker": "summarize"},
        "tags": ["v1"] if m.role == "assistant" and role is None else [],
        "attachments": m.attachments if role is None else [],
    }


def history_json(s: FakeSession) -> list[dict[str, Any]]:
    """The session's messages as ``GET /api/sessions/{id}/`` lists them: a message's summary is a
    ``system`` entry just before it (``apps/chat/models.py`` ``message_iterator``)."""
    listed = []
    for m in s.messages:
        if m.summary is not None:
            listed.append(_message_json(m, "system", m.summary))
        listed.append(_message_json(m))
    return listed


def session_json(base: str, s: FakeSession, versions: set[int], *, with_messages: bool) -> dict[str, Any]:
    """A session as OCS's ``GET /api/sessions/{id}/`` shows it."""
    experiment = experiment_json(base, s.experiment, versions)
    data: dict[str, Any] = {
        "url": f"{base}/api/sessions/{s.id}/",
        "id": s.id,
        "team": TEAM,
        "experiment": {
            "id": experiment["id"],
            "name": experiment["name"],
            "description": "",
            "url": experiment["url"],
            "version_number": experiment["version_number"],
        },
        "participant": {"identifier": s.owner, "remote_id": s.remote_id},
        "created_at": s.created_at,
        "updated_at": s.updated_at or s.created_at,
        "status": s.status,
        "platform": s.platform,
    }
    if with_messages:
        data["messages"] = history_json(s)
        data["usage"] = {"total_cost": "0.00000000", "by_model": []}
    return data | {"tags": [], "state": s.state}


def experiment_json(base: str, experiment: str, versions: set[int] | None = None) -> dict[str, Any]:
    """``GET /api/experiments/{id}/``: the working version's number, and the published ``versions``."""
    published = sorted(versions or {1})
    return {
        "id": experiment,
        "name": "Fake bot",
        "url": f"{base}/api/experiments/{experiment}/",
        "version_number": published[-1] + 1,
        "versions": [
            {
                "name": "Fake bot",
                "version_number": number,
                "is_default_version": number == published[-1],
                "version_description": "",
            }
            for number in published
        ],
    }


async def injected(request: web.Request, kind: FailureKind | None, sleep: float) -> web.Response | None:
    """The answer of an injected failure (None: handle the request, maybe to fail it with 500)."""
    if kind == "timeout":
        await asyncio.sleep(sleep)
    elif kind == "drop":
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError  # nothing more to say on a closed connection
    elif kind == 429:
        body = {"detail": "Rate limit exceeded.", "available_in": 1}
        return web.json_response(body, status=429, headers={"Retry-After": "1"})
    elif kind in _GATEWAY:
        title = f"{kind} {_GATEWAY[kind]}"
        return _html(kind, f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>")
    elif kind == 500:
        request[FAIL_500] = True
        if "incoming_message" not in str(request.path):
            return _html(500, DJANGO_500)
    return None
