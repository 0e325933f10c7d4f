"""open.cx: an AI support platform whose AI answers first and can hand a conversation to a human.

One open.cx chat session per conversation (``POST /chat/sessions``, the person as ``contact``);
messages through ``POST /chat/sessions/{id}/send``. The answer may come wrapped in ``data`` or
not. Once a session is handed off there is no AI answer: human agents' replies are read from the
session's history (``Bot.history``), which the follower reads while the conversation is handed off.

Webhook events (``POST /bot-events/{bot}``): open.cx promises no signature, so the bridge checks
a shared secret of its own (``OPENCX_WEBHOOK_SECRET``, as ``?secret=`` or ``X-Webhook-Secret``) in
constant time. ``conversation.agent_response`` is an agent's reply due in the history (the agent has
the session, however it came to them), ``conversation.handoff_to_human`` a handoff and
``conversation.closed`` a closing; other events are acknowledged and ignored.

The API allows about 100 requests a minute: a token bucket paces the requests of this process, and
history reads only take from above a reserve kept for messages, so they never starve them.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bridge.bots.base import AgentReplyDue, BotError, Closed, HandedOff, History, HistoryMessage, SessionEvent
from bridge.bots.budget import Budget
from bridge.bots.http import CLOCK_SKEW, HttpBot, created_at
from bridge.errors import BadRequest, Forbidden, Unauthorized
from bridge.model import Attachment, Conversation, LocalFile, Reply
from bridge.secrets import matches
from bridge.settings import BotSettings

if TYPE_CHECKING:
    from aiohttp import web

AI_SENDERS = {"ai", "bot", "autopilot"}
NOT_FOR_PERSON = {*AI_SENDERS, "contact"}  # (``contact`` is the person)
CLOSED_STATUSES = {"closed", "resolved"}
REMEMBERED = 10_000  # autopilot answer ids delivered, recognised when the history shows them
PHONE_PLATFORMS = {"sms", "whatsapp"}
NO_SESSION = "00000000-0000-0000-0000-000000000000"  # for ``check``: a read that finds nothing
SECRET_HEADER = "X-Webhook-Secret"
EVENTS: dict[str, type[SessionEvent]] = {
    "conversation.agent_response": AgentReplyDue,
    "conversation.handoff_to_human": HandedOff,
    "conversation.closed": Closed,
}


class OpenCxBot(HttpBot):
    service = "open.cx"
    follows_history = True
    follows_only_handoff = True

    def __init__(self, settings: BotSettings):
        if settings.api_key is None:
            raise ValueError("an open.cx bot needs an API key")
        super().__init__(settings)
        self._key = settings.api_key
        self._secret = settings.webhook_secret
        self.budget = Budget(settings.rate_limit)
        self._answered: OrderedDict[str, None] = OrderedDict()

    def headers(self) -> dict[str, str]:
        return super().headers() | {"Authorization": f"Bearer {self._key.get_secret_value()}"}

    async def open_session(self, conversation: Conversation) -> str:
        person = conversation.person
        platform = person.platform or conversation.channel
        contact: dict[str, Any] = {"name": person.name or person.key}
        if platform in PHONE_PLATFORMS:
            contact["phone_number"] = person.address.removeprefix("whatsapp:")
        custom_data = {"platform": platform, "channel": conversation.channel, "user_id": person.key}
        body = await self._request(
            "POST",
            "/chat/sessions",
            {"channel": {"type": "api"}, "contact": contact, "custom_data": custom_data},
        )
        session_id = body.get("id")
        if not isinstance(session_id, str) or not session_id:
            raise BotError("open.cx created a session without an id")
        return session_id

    async def send(self, session_id: str, text: str, files: Sequence[LocalFile] = ()) -> Reply:
        payload = {"sender": "contact", "message": {"type": "text", "text": text}}
        body = await self._request("POST", f"/chat/sessions/{session_id}/send", payload, session=True)
        handed_off = body.get("sessionIsHandedOff") is True
        texts = []
        answer = body.get("autopilotResponse")
        if isinstance(answer, dict):
            value = _object(answer.get("value"))
            if value.get("error") is True:
                raise BotError("open.cx's AI failed to answer (value.error)")
            if isinstance(value.get("content"), str):
                texts.append(value["content"])
            if isinstance(answer.get("id"), str):
                self._remember(answer["id"])
        ui = body.get("uiResponse")
        ui_value = ui.get("value") if isinstance(ui, dict) else None
        if isinstance(ui_value, dict) and isinstance(ui_value.get("content"), str) and ui_value["content"]:
            texts.append(ui_value["content"])
        if not texts and not handed_off:
            raise BotError("open.cx answered without an answer")
        return Reply(text="\n\n".join(t for t in texts if t), handed_off=handed_off)

    async def history(self, session_id: str, cursor: str | None) -> History:
        """Human agents' messages after ``cursor``, page after page. The cursor is ``seen:page``:
        the page of open.cx's history last read and how many of its items were read."""
        seen_text, _, page = (cursor or "0:").partition(":")
        seen = int(seen_text) if seen_text.isdigit() else 0
        found: list[HistoryMessage] = []
        closed = False
        pages = 0
        while True:
            try:
                self.budget.take_spare()
            except BotError:
                if pages:  # what was read counts; the rest at the next read
                    return History(found, f"{seen}:{page}", closed)
                raise
            items, following = await self._page(session_id, page)
            pages += 1
            for item in items[seen:]:
                event = _object(item.get("event"))
                closed = closed or _closes(event)
                message = self._for_person(item, event)
                if message is not None:
                    found.append(message)
            if following is None:
                return History(found, f"{max(seen, len(items))}:{page}", closed)
            page, seen = following, 0

    async def recover(self, session_id: str, text: str, since: datetime) -> Reply | None:
        """If an earlier attempt (a timeout, a crash) reached open.cx, its history has the person's
        message since then: the AI's answer that followed it, or a handoff, so that the turn is
        not sent twice. (On the message's path, so paced like a message.)"""
        items: list[dict[str, Any]] = []
        page: str | None = ""
        while page is not None:
            await self.budget.take()
            chunk, page = await self._page(session_id, page)
            items += chunk
        earliest = since - CLOCK_SKEW
        events = [_object(item.get("event")) for item in items]
        for index in range(len(items) - 1, -1, -1):
            event = events[index]
            if _sender(event) == "contact" and _text(event) == text and created_at(items[index]) >= earliest:
                later = events[index + 1 :]
                answer = next(
                    (e for e in later if e.get("type") == "message" and _sender(e) != "contact"), None
                )
                if answer is not None and _sender(answer) in AI_SENDERS:
                    return Reply(text=_text(answer))
                if answer is not None or any("handoff" in str(e.get("type")) for e in events):
                    return Reply(text="", handed_off=True)
                raise BotError("open.cx is still answering an earlier attempt", retryable=True)
        return None

    async def _page(self, session_id: str, page: str) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the session's history: its items and the next page's cursor (None: the last)."""
        try:
            body = await self._call(
                "GET",
                f"{self.base}/chat/sessions/{session_id}/history",
                None,
                params={"cursor": page} if page else None,
                session=True,
            )
        except BotError as exc:
            self._throttled(exc)
            raise
        page_body = _object(_unwrap(body))
        items = [i for i in page_body.get("items") or () if isinstance(i, dict)]
        following = page_body.get("next")
        return items, following if isinstance(following, str) and following else None

    def _for_person(self, item: dict[str, Any], event: dict[str, Any]) -> HistoryMessage | None:
        """A human agent's message; None for the person's own, the AI's, and events."""
        if event.get("type") != "message":
            return None
        item_id = item.get("id")
        if _sender(event) in NOT_FOR_PERSON or (item_id in self._answered):
            return None
        text = _text(event)
        files = tuple(
            Attachment(
                name=str(a.get("name") or "file"),
                url=a["url"],
                content_type=str(a.get("type") or ""),
                size=a["size"] if isinstance(a.get("size"), int) else None,
            )
            for a in event.get("attachments") or ()
            if isinstance(a, dict) and isinstance(a.get("url"), str)
        )
        if not text and not files:
            return None
        if not isinstance(item_id, str) or not item_id:  # ids are optional: the item's own content
            item_id = hashlib.sha256(f"{item.get('created_at')}\n{text}".encode()).hexdigest()[:32]
        return HistoryMessage(id=item_id, text=text, attachments=files)

    async def events(self, request: web.Request) -> list[SessionEvent] | None:
        """Off without a webhook secret; 401 without the secret, 403 for a wrong one, 400 for a
        body that is not an event. An event naming no session the bridge could have opened is none."""
        if self._secret is None:
            return None
        given = request.query.get("secret") or request.headers.get(SECRET_HEADER)
        if not given:
            raise Unauthorized(f"the secret is missing (?secret= or {SECRET_HEADER})")
        if not matches(given, self._secret.get_secret_value()):
            raise Forbidden("wrong secret")
        name, session_id = _event(await request.read())
        kind = EVENTS.get(name)
        return [kind(session_id)] if kind is not None and session_id else []

    async def end_session(self, session_id: str) -> None:
        """open.cx has no call to end a session: the bridge forgets it and opens a new one."""
        return None

    async def check(self) -> str:
        try:
            await self._call("GET", f"{self.base}/chat/sessions/{NO_SESSION}/history", None)
        except BotError as exc:
            if exc.status == 401:
                raise BotError(f"open.cx at {self.base} refused the API key (401): it is wrong") from None
            if exc.status == 403:
                raise BotError(f"open.cx at {self.base} refused the API key (403): not allowed") from None
            if exc.status != 404:
                raise
        events = "on" if self._secret is not None else "off (agents' replies come with the next history read)"
        return f"open.cx at {self.base}, API key accepted; webhook events {events}"

    async def _request(
        self, method: str, path: str, payload: dict[str, Any], *, session: bool = False
    ) -> dict[str, Any]:
        """A request paced by the budget; its JSON object, unwrapped from ``data`` if need be."""
        await self.budget.take()
        try:
            body = await self._call(method, f"{self.base}{path}", payload, session=session)
        except BotError as exc:
            self._throttled(exc)
            raise
        body = _unwrap(body)
        if body is None:
            raise BotError("open.cx answered something that is not a JSON object")
        return body

    def _throttled(self, exc: BotError) -> None:
        if exc.status == 429:
            self.budget.exhausted()

    def _remember(self, answer_id: str) -> None:
        self._answered[answer_id] = None
        while len(self._answered) > REMEMBERED:
            self._answered.popitem(last=False)


def _event(raw: bytes) -> tuple[str, str]:
    """A webhook event's name and its session (``data.conversation_id``), or 400."""
    try:
        body: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("malformed JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        raise BadRequest("an event is a JSON object with an 'event' name")
    session_id = _object(body.get("data")).get("conversation_id")
    if not isinstance(session_id, str) or len(session_id) > 255 or not session_id.isprintable():
        session_id = ""  # nothing the bridge could have opened
    return body["event"], session_id


def _unwrap(body: Any) -> dict[str, Any] | None:
    """The object itself, or the one inside ``{"success": true, "data": {...}}``."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    return data if isinstance(data, dict) else body


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sender(event: dict[str, Any]) -> str:
    return str(_object(event.get("sender")).get("type", "")).lower()


def _text(event: dict[str, Any]) -> str:
    text = _object(event.get("content")).get("text")
    return text if isinstance(text, str) else ""


def _closes(event: dict[str, Any]) -> bool:
    """A status change to closed (or resolved) in the history."""
    kind = str(event.get("type", "")).lower()
    if kind in {"closed", "session_closed", "conversation_closed"}:
        return True
    return "status" in kind and str(event.get("status", "")).lower() in CLOSED_STATUSES
