"""A fake open.cx over real HTTP: chat sessions, sending as the contact, the session's history.

Faithful to ``REFERENCE.md`` ("open.cx")::

    async with FakeOpenCx() as cx:
        bot = OpenCxBot(BotSettings(backend="opencx", base_url=cx.url, api_key=cx.api_key))
        cx.handoff_on = "human"         # a message with this word hands the session to an agent
        cx.agent_says(session_id, "Hi, Sam here")
        cx.close(session_id)

Choices of the fake, where open.cx's documentation is silent:

- ``Authorization: Bearer <api_key>`` on every request; otherwise 401 ``{"message": ...}``.
- Answers are wrapped as ``{"success": true, "data": {...}}`` when ``wrapped`` is true (both
  shapes exist). The AI answers ``reply(text)``; a message containing ``error_on`` gets
  ``value.error: true``. ``ui`` (a string) adds a ``uiResponse`` with that content.
- A message containing ``handoff_on`` hands the session off: no ``autopilotResponse``, and
  ``sessionIsHandedOff`` from then on (the AI is silent; agents write with ``agent_says``).
- History items are ``{"id", "created_at", "event": {"type", "sender", "content"}}``; the AI's
  sender type is ``ai``, an agent's ``agent``; handoff and closing are events of type ``handoff``
  and ``status_change`` (``status: closed``). Pages hold ``page_size`` items; the cursor is the
  offset of the next page (``next`` is null on the last page).
- An unknown session answers 404; a closed one 404 on send, while its history stays readable.
- ``slow_next(seconds)`` delays the next send's answer after it landed (a timeout to recover from).
- ``rate_limit`` (requests per ``rate_window`` seconds, a minute by default; None: off) answers
  429 with ``Retry-After`` beyond it, and ``fail_next(429)`` does it once; 429 stores nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiohttp import web

from fakes.server import serve_locally


@dataclass
class CxSession:
    id: str
    contact: dict[str, Any]
    custom_data: dict[str, Any]
    items: list[dict[str, Any]] = field(default_factory=list)
    handed_off: bool = False
    closed: bool = False

    def add(self, kind: str, sender: str = "", text: str = "", **extra: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"type": kind, **extra}
        if sender:
            event["sender"] = {"type": sender, "name": sender.title()}
        if text:
            event["content"] = {"type": "text", "text": text}
        item = {"id": str(uuid.uuid4()), "created_at": _now(), "event": event}
        self.items.append(item)
        return item

    def said(self, sender: str) -> list[str]:
        return [
            i["event"]["content"]["text"]
            for i in self.items
            if i["event"].get("sender", {}).get("type") == sender
        ]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class FakeOpenCx:
    def __init__(self, prefix: str = "", *, api_key: str = "cx-key", page_size: int = 3):
        self.prefix = prefix.rstrip("/")
        self.api_key = api_key
        self.page_size = page_size
        self.sessions: dict[str, CxSession] = {}
        self.wrapped = False
        self.handoff_on = "human"
        self.error_on = "explode"
        self.ui: str | None = None
        self.rate_limit: int | None = None
        self.rate_window = 60.0  # seconds the rate limit counts over
        self.retry_after = 1
        self.calls: list[tuple[str, str, Any]] = []  # (method, path without prefix, JSON body)
        self.history_reads: dict[str, int] = {}
        self._failures: list[tuple[int, str]] = []
        self._slow: list[float] = []
        self._recent: list[float] = []
        self.url = ""

    def reply(self, text: str) -> str:
        return f"ai: {text}"

    def env(self) -> dict[str, str]:
        return {"OPENCX_BASE_URL": self.url, "OPENCX_API_KEY": self.api_key}

    def fail_next(self, status: int, times: int = 1, *, on: str = "/send") -> None:
        self._failures += [(status, on)] * times

    def slow_next(self, seconds: float) -> None:
        """The next send lands and is answered (in the history) but its answer takes ``seconds``."""
        self._slow.append(seconds)

    def agent_says(self, session_id: str, text: str) -> None:
        self.sessions[session_id].add("message", "agent", text)

    def hand_off(self, session_id: str) -> None:
        session = self.sessions[session_id]
        session.handed_off = True
        session.add("handoff", reason="asked for a human")

    def close(self, session_id: str) -> None:
        session = self.sessions[session_id]
        session.closed = True
        session.add("status_change", status="closed")

    def received(self, session_id: str) -> list[str]:
        """What the contact sent in this session."""
        return self.sessions[session_id].said("contact")

    # server -------------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeOpenCx:
        app = web.Application(middlewares=[self._guard])
        p = self.prefix
        app.router.add_post(f"{p}/chat/sessions", self._create)
        app.router.add_post(f"{p}/chat/sessions/{{id}}/send", self._send)
        app.router.add_get(f"{p}/chat/sessions/{{id}}/history", self._history)
        self._runner, self.url = await serve_locally(app, self.prefix)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._runner.cleanup()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path[len(self.prefix) :]
        body = await request.json() if request.can_read_body else None
        self.calls.append((request.method, path, body))
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
            return web.json_response({"message": "Unauthorized"}, status=401)
        for index, (status, on) in enumerate(self._failures):
            if on in path:
                del self._failures[index]
                return self._refuse(status)
        now = time.monotonic()
        self._recent = [t for t in self._recent if t > now - self.rate_window]
        if self.rate_limit is not None and len(self._recent) >= self.rate_limit:
            return self._refuse(429)
        self._recent.append(now)
        return await handler(request)

    def _refuse(self, status: int) -> web.Response:
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
        return web.json_response({"message": f"refused ({status})"}, status=status, headers=headers)

    def _answer(self, body: dict[str, Any], status: int = 200) -> web.Response:
        if self.wrapped:
            body = {"success": True, "data": body}
        return web.json_response(body, status=status)

    def _session(self, request: web.Request, *, open_only: bool = True) -> CxSession:
        session = self.sessions.get(request.match_info["id"])
        if session is None or (session.closed and open_only):
            raise web.HTTPNotFound(text='{"message": "session not found"}', content_type="application/json")
        return session

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("channel", {}).get("type") != "api":
            return web.json_response({"message": "channel.type must be api"}, status=400)
        contact = body.get("contact") or {}
        custom_data = body.get("custom_data") or {}
        for data in (custom_data, contact.get("custom_data") or {}):
            if any(not isinstance(v, str | int | float | bool) for v in data.values()):
                return web.json_response({"message": "custom_data values must be scalars"}, status=400)
        session = CxSession(str(uuid.uuid4()), contact, custom_data)
        self.sessions[session.id] = session
        return self._answer({"id": session.id}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        session = self._session(request)
        body = await request.json()
        message = body.get("message") or {}
        if body.get("sender") != "contact" or message.get("type") != "text":
            return web.json_response({"message": "sender must be contact, message a text"}, status=400)
        text = str(message.get("text", ""))
        session.add("message", "contact", text)
        if not session.handed_off and self.handoff_on and self.handoff_on in text:
            self.hand_off(session.id)
        if session.handed_off:
            return self._answer({"success": True, "sessionIsHandedOff": True}, status=201)
        answer: dict[str, Any] = {"success": True, "sessionIsHandedOff": False}
        if self.error_on and self.error_on in text:
            value = {"error": True, "content": "An error occurred"}
            answer["autopilotResponse"] = {"type": "text", "value": value, "id": str(uuid.uuid4())}
        else:
            item = session.add("message", "ai", self.reply(text))
            value = {"error": False, "content": self.reply(text)}
            answer["autopilotResponse"] = {"type": "text", "value": value, "id": item["id"]}
        if self.ui is not None:
            ui_value = {"type": "ui_component", "name": "card", "content": self.ui}
            answer["uiResponse"] = {"type": "ui", "value": ui_value}
        if self._slow:
            await asyncio.sleep(self._slow.pop(0))
        return self._answer(answer, status=201)

    async def _history(self, request: web.Request) -> web.Response:
        session = self._session(request, open_only=False)
        self.history_reads[session.id] = self.history_reads.get(session.id, 0) + 1
        cursor = request.query.get("cursor", "0")
        start = int(cursor) if cursor.isdigit() else 0
        end = start + self.page_size
        following = str(end) if end < len(session.items) else None
        return self._answer({"items": session.items[start:end], "next": following})
