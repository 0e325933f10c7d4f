"""Open Chat Studio: one OCS session per conversation, messages through the API channel.

One API key is one OCS participant, so the bridge opens a session per conversation
(``POST /api/sessions/``, never with ``participant``) and sends every message with its ``session``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bridge.bots.base import BotError, History, HistoryMessage, SessionGone, SessionInfo, StateChange
from bridge.bots.http import CLOCK_SKEW, HttpBot, created_at
from bridge.model import Attachment, Conversation, Reply
from bridge.settings import BotSettings


class OcsBot(HttpBot):
    service = "OCS"
    follows_history = True

    def __init__(self, settings: BotSettings):
        if settings.api_key is None or not settings.experiment_id:
            raise ValueError("an OCS bot needs an API key and an experiment id")
        super().__init__(settings)
        self.experiment = settings.experiment_id
        self.version = settings.version
        self._key = settings.api_key
        self._team: dict[str, Any] | None = None

    def headers(self) -> dict[str, str]:
        return super().headers() | {"X-api-key": self._key.get_secret_value()}

    def retry_after(self, raw: bytes, headers: Mapping[str, str]) -> float | None:
        """OCS says when in the body: ``{"detail", "available_in": seconds}``."""
        try:
            value = json.loads(raw).get("available_in")
            return float(value) if value is not None else None
        except (ValueError, AttributeError, TypeError):
            return None

    @property
    def message_url(self) -> str:
        version = f"/v{self.version}" if self.version else ""
        return f"{self.base}/channels/api/{self.experiment}{version}/incoming_message"

    async def open_session(self, conversation: Conversation) -> str:
        person = conversation.person
        state = {
            "platform": person.platform or conversation.channel,
            "channel": conversation.channel,
            "user_id": person.key,
            "user_name": person.name,
        }
        body = await self._call(
            "POST", f"{self.base}/api/sessions/", {"experiment": self.experiment, "state": state}
        )
        session_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(session_id, str) or not session_id:
            raise BotError("OCS created a session without an id")
        return session_id

    async def send(self, session_id: str, text: str) -> Reply:
        body = await self._call(
            "POST", self.message_url, {"message": text, "session": session_id}, session=True
        )
        if not isinstance(body, dict) or not isinstance(body.get("response"), str):
            raise BotError("OCS answered without a response text")
        attachments = tuple(
            Attachment(name=str(a.get("file_name") or "file"), url=str(a["link"]))
            for a in body.get("attachments") or ()
            if isinstance(a, dict) and isinstance(a.get("link"), str)
        )
        return Reply(text=body["response"], attachments=attachments)

    async def recover(self, session_id: str, text: str, since: datetime) -> Reply | None:
        """OCS keeps every turn in the session (``GET /api/sessions/{id}/``): find this message
        there, stored since the earlier attempt, and the answer that followed it."""
        try:
            messages = _messages(await self._session(session_id))
        except SessionGone:
            return None
        earliest = since - CLOCK_SKEW
        for index in range(len(messages) - 1, -1, -1):
            turn = messages[index]
            if _is_turn(turn, "user", text) and created_at(turn) >= earliest:
                answer = next((m for m in messages[index + 1 :] if _is_turn(m, "assistant")), None)
                if answer is None:
                    raise BotError("OCS is still answering an earlier attempt", retryable=True)
                return Reply(text=str(answer.get("content") or ""), attachments=_history_files(answer))
        return None

    async def update_session(self, session_id: str, change: StateChange | None = None) -> SessionInfo:
        """OCS's ``update_state`` replaces the state: read it, change it, write it back. (With no
        change, once the team is known, nothing needs reading.)"""
        url = f"{self.base}/api/sessions/{session_id}/"
        if change is None and self._team is not None:
            return SessionInfo(url=url, team=self._team)
        session = await self._session(session_id)
        if change is not None:
            state = session.get("state")
            state = dict(state) if isinstance(state, dict) else {}
            changed = change(dict(state))
            if changed != state:
                await self._call("PATCH", f"{url}update_state/", {"state": changed})
        team = session.get("team")
        self._team = team if isinstance(team, dict) else None  # one key is one team
        return SessionInfo(url=str(session.get("url") or url), team=self._team)

    async def history(self, session_id: str, cursor: str | None) -> History:
        """Assistant messages in the session's history that answer no user turn: OCS wrote them by
        itself (a timeout trigger, a scheduled or triggered message). The API channel's answers
        each follow the user turn the bridge sent. The cursor is how many messages were read."""
        messages = _messages(await self._session(session_id))
        start = int(cursor) if cursor and cursor.isdigit() else 0
        found = [
            HistoryMessage(
                id=f"{index}:{message.get('created_at')}",
                text=str(message.get("content") or ""),
                attachments=_history_files(message),
            )
            for index, message in enumerate(messages)
            if index >= start
            and _is_turn(message, "assistant")
            and (index == 0 or not _is_turn(messages[index - 1], "user"))
        ]
        return History(found, str(max(start, len(messages))))

    async def _session(self, session_id: str) -> dict[str, Any]:
        """``GET /api/sessions/{id}/`` (with its ``messages``); ``SessionGone`` if OCS does not know it."""
        body = await self._call("GET", f"{self.base}/api/sessions/{session_id}/", None, session=True)
        if not isinstance(body, dict):
            raise BotError("OCS answered a session that is not a JSON object")
        return body

    async def end_session(self, session_id: str) -> None:
        try:
            await self._call("POST", f"{self.base}/api/sessions/{session_id}/end_experiment_session/", None)
        except BotError as exc:
            if exc.status != 404:
                raise

    async def check(self) -> str:
        body = await self._call("GET", f"{self.base}/api/experiments/{self.experiment}/", None)
        name = body.get("name") if isinstance(body, dict) else None
        # Keys are read-only by default in OCS. An empty session request is refused as invalid (400)
        # with a key that may write, and with 403 with a read-only one; it creates nothing.
        try:
            await self._call("POST", f"{self.base}/api/sessions/", {})
        except BotError as exc:
            if exc.status == 403:
                raise BotError("the OCS API key is read-only: give it write access in OCS") from None
            if exc.status != 400:
                raise
        return f"OCS chatbot {name or self.experiment!r} at {self.base}, API key can write"


def _messages(session: dict[str, Any]) -> list[Any]:
    messages = session.get("messages")
    return messages if isinstance(messages, list) else []


def _is_turn(message: Any, role: str, content: str | None = None) -> bool:
    if not isinstance(message, dict) or message.get("role") != role:
        return False
    return content is None or message.get("content") == content


def _history_files(message: dict[str, Any]) -> tuple[Attachment, ...]:
    """Attachments as the session history lists them (``name``/``content_url``, or the API
    channel's ``file_name``/``link``)."""
    files = []
    for item in message.get("attachments") or ():
        if isinstance(item, dict):
            url = item.get("content_url") or item.get("link")
            if isinstance(url, str):
                files.append(
                    Attachment(name=str(item.get("name") or item.get("file_name") or "file"), url=url)
                )
    return tuple(files)
