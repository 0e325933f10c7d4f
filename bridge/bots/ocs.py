"""Open Chat Studio: one OCS session per conversation, messages through the API channel.

One API key is one OCS participant (the key's user), so the bridge opens a session per
conversation (``POST /api/sessions/``, never with ``participant``) and sends every message with
its ``session``. Every request is drawn from the team's budget (``bridge.bots.team_budget``).
As OCS at commit a77c545 answered it (``REFERENCE.md``, "OCS as a real server answered it"):

- an ended session (``pending-review``, ``complete``) still accepts messages and reopens, so the
  bridge reads a session's status before relaying into it (``ended``) and the follower reads it
  with the history: an ended session is never written to again;
- a broken bot answers with OCS's apology, as a 200 or stored behind a 500: a failure, never an
  answer;
- the history is read by the messages' identity (``created_at`` and content): OCS inserts
  ``system`` summaries into it, which shift positions.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bridge.bots.base import BotError, History, HistoryMessage, SessionGone, SessionInfo, StateChange
from bridge.bots.http import CLOCK_SKEW, HttpBot, created_at
from bridge.bots.team_budget import TeamBudget, parse_rate, retry_after
from bridge.metrics import Metrics
from bridge.model import Attachment, Conversation, LocalFile, Reply
from bridge.settings import BotSettings
from bridge.store.repo import Store

OPEN_STATUSES = ("setup", "active")
APOLOGY = "Sorry, something went wrong while processing your message"  # OCS's, when the bot failed
READS = ("read",)  # request kinds that only take from what messages leave over


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
        self._name: str | None = None
        self.budget = TeamBudget(
            self.base, settings.api_key.get_secret_value(), *parse_rate(settings.team_rate_limit)
        )

    def attach(self, store: Store, metrics: Metrics, name: str) -> None:
        """Share the team's budget with every process through ``store``."""
        self.budget.attach(store, metrics, name)

    def headers(self) -> dict[str, str]:
        return super().headers() | {"X-api-key": self._key.get_secret_value()}

    async def answered(self, status: int, raw: bytes, headers: Mapping[str, str]) -> None:
        await self.budget.answered(status, raw, headers)

    def retry_after(self, raw: bytes, headers: Mapping[str, str]) -> float | None:
        """OCS says when in ``Retry-After`` and in the body (``available_in``)."""
        return retry_after(raw, headers)

    async def _request(
        self, kind: str, method: str, url: str, payload: dict[str, Any] | None, *, session: bool = False
    ) -> Any:
        """One request drawn from the team's budget. A 429 paused the team: a message's request
        waits with it and is sent again (twice at most); a history read is put off."""
        for attempt in range(3):
            if kind in READS:
                await self.budget.take_spare(kind)
            else:
                await self.budget.take(kind)
            try:
                return await self._call(method, url, payload, session=session)
            except BotError as exc:
                if exc.status != 429 or kind in READS or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @property
    def message_url(self) -> str:
        version = f"/v{self.version}" if self.version else ""
        return f"{self.base}/channels/api/{self.experiment}{version}/incoming_message"

    async def open_session(self, conversation: Conversation) -> str:
        state = person_state(conversation)
        body = await self._request(
            "session", "POST", f"{self.base}/api/sessions/", {"experiment": self.experiment, "state": state}
        )
        session_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(session_id, str) or not session_id:
            raise BotError("OCS created a session without an id")
        return session_id

    async def send(self, session_id: str, text: str, files: Sequence[LocalFile] = ()) -> Reply:
        body = await self._request(
            "message", "POST", self.message_url, {"message": text, "session": session_id}, session=True
        )
        if not isinstance(body, dict) or not isinstance(body.get("response"), str):
            raise BotError("OCS answered without a response text")
        if body["response"].startswith(APOLOGY):
            reason = "OCS answered with its apology: the bot failed (see its pipeline in OCS)"
            raise BotError(reason, status=200)
        attachments = tuple(
            Attachment(name=str(a.get("file_name") or "file"), url=str(a["link"]))
            for a in body.get("attachments") or ()
            if isinstance(a, dict) and isinstance(a.get("link"), str)
        )
        return Reply(text=body["response"], attachments=attachments)

    async def recover(self, session_id: str, text: str, since: datetime) -> Reply | None:
        """OCS keeps every turn in the session (``GET /api/sessions/{id}/``): find this message
        there, stored since the earlier attempt, and the answer that followed it (not OCS's
        apology: then the bot failed, and the message is sent again)."""
        try:
            messages = _messages(await self._session(session_id, "recover"))
        except SessionGone:
            return None
        earliest = since - CLOCK_SKEW
        for index in range(len(messages) - 1, -1, -1):
            turn = messages[index]
            if is_turn(turn, "user", text) and created_at(turn) >= earliest:
                answer = next((m for m in messages[index + 1 :] if is_turn(m, "assistant")), None)
                if answer is None:
                    raise BotError("OCS is still answering an earlier attempt", retryable=True)
                if str(answer.get("content") or "").startswith(APOLOGY):
                    return None
                return Reply(text=str(answer.get("content") or ""), attachments=history_files(answer))
        return None

    async def update_session(self, session_id: str, change: StateChange | None = None) -> SessionInfo:
        """OCS's ``update_state`` replaces the state: read it, change it, write it back. (With no
        change, once the team is known, nothing needs reading.)"""
        url = f"{self.base}/api/sessions/{session_id}/"
        if change is None and self._team is not None:
            return SessionInfo(url=url, team=self._team)
        session = await self._session(session_id, "state")
        if change is not None:
            state = session.get("state")
            state = dict(state) if isinstance(state, dict) else {}
            changed = change(dict(state))
            if changed != state:
                await self._request("state", "PATCH", f"{url}update_state/", {"state": changed})
        team = session.get("team")
        self._team = team if isinstance(team, dict) else None  # one key is one team
        return SessionInfo(url=str(session.get("url") or url), team=self._team)

    async def history(self, session_id: str, cursor: str | None) -> History:
        """What OCS wrote by itself since ``cursor`` (a timeout trigger, a scheduled or triggered
        message, a goodbye), and whether the session is ended; only from what messages leave over."""
        return _unread(await self._session(session_id, "read"), cursor)

    async def ended(self, session_id: str, cursor: str | None) -> History:
        """The same read, on a message's path (it waits for the budget like the message). Without
        a cursor (the follower never read the session), what OCS wrote since the person's last turn."""
        session = await self._session(session_id, "status")
        if cursor is None:
            turns = [m for m in _messages(session) if is_turn(m, "user")]
            cursor = created_at(turns[-1]).isoformat() if turns else None
        return _unread(session, cursor)

    async def _session(self, session_id: str, kind: str) -> dict[str, Any]:
        """``GET /api/sessions/{id}/`` (with its ``messages``); ``SessionGone`` if OCS does not know it."""
        url = f"{self.base}/api/sessions/{session_id}/"
        body = await self._request(kind, "GET", url, None, session=True)
        if not isinstance(body, dict):
            raise BotError("OCS answered a session that is not a JSON object")
        return body

    async def end_session(self, session_id: str) -> None:
        try:
            url = f"{self.base}/api/sessions/{session_id}/end_experiment_session/"
            await self._request("end", "POST", url, None)
        except BotError as exc:
            if exc.status != 404:
                raise

    async def _experiment(self, kind: str) -> dict[str, Any]:
        body = await self._request(kind, "GET", f"{self.base}/api/experiments/{self.experiment}/", None)
        return body if isinstance(body, dict) else {}

    async def display_name(self) -> str | None:
        """The experiment's name, asked once (a failure is asked again next time)."""
        if self._name is None:
            with contextlib.suppress(BotError):
                self._name = str((await self._experiment("name")).get("name") or "") or None
        return self._name

    async def check(self) -> str:
        body = await self._experiment("check")
        name = body.get("name") or self.experiment
        if self.version is not None and self.version not in _versions(body):
            known = ", ".join(str(v) for v in sorted(_versions(body))) or "none"
            raise BotError(
                f"OCS chatbot {name!r} has no version {self.version} (OCS_EXPERIMENT_VERSION); its versions: "
                f"{known}"
            )
        # Keys are read-only by default in OCS. An empty session request is refused as invalid (400)
        # with a key that may write, and with 403 with a read-only one; it creates nothing.
        try:
            await self._request("check", "POST", f"{self.base}/api/sessions/", {})
        except BotError as exc:
            if exc.status == 403:
                raise BotError("the OCS API key is read-only: give it write access in OCS") from None
            if exc.status != 400:
                raise
        return (
            f"OCS chatbot {name!r} at {self.base}, API key can write; every person is the same OCS "
            "participant (the key's user)"
        )


def person_state(conversation: Conversation) -> dict[str, Any]:
    """Who the person is, as a session's state tells the bot: platform, channel, id, name."""
    person = conversation.person
    return {
        "platform": person.platform or conversation.channel,
        "channel": conversation.channel,
        "user_id": person.key,
        "user_name": person.name,
    }


def _versions(experiment: dict[str, Any]) -> set[int]:
    """The version numbers OCS answers on: the published ``versions`` and the working one."""
    listed = [v.get("version_number") for v in experiment.get("versions") or () if isinstance(v, dict)]
    return {v for v in [*listed, experiment.get("version_number")] if isinstance(v, int)}


def _unread(session: dict[str, Any], cursor: str | None) -> History:
    """The session's assistant messages after ``cursor`` that answer no user turn: OCS wrote them
    by itself (the API channel's answers each follow the user turn the bridge sent). ``system``
    entries (summaries) are skipped. The cursor is the newest ``created_at`` read; a number is a
    position (how many entries were read: cursors written before messages had an identity)."""
    listed = _messages(session)
    after = created_at({"created_at": cursor}) if cursor and not cursor.isdigit() else None
    if cursor and cursor.isdigit():  # everything up to that position was read
        read = [m for m in listed[: int(cursor)] if isinstance(m, dict)]
        after = max((created_at(m) for m in read), default=None)
    turns = [m for m in listed if is_turn(m, "user") or is_turn(m, "assistant")]
    found = [
        HistoryMessage(id=identity(m), text=str(m.get("content") or ""), attachments=history_files(m))
        for index, m in enumerate(turns)
        if (after is None or created_at(m) > after)
        and m["role"] == "assistant"
        and (index == 0 or turns[index - 1]["role"] != "user")
    ]
    newest = max((created_at(m) for m in turns), default=None)
    position = newest.isoformat() if newest is not None and (after is None or newest > after) else cursor
    return History(found, position, closed=session.get("status", "active") not in OPEN_STATUSES)


def identity(message: dict[str, Any]) -> str:
    """A history message's identity: when OCS stored it and what it says (positions shift)."""
    digest = hashlib.sha256(str(message.get("content")).encode()).hexdigest()[:16]
    return f"{message.get('created_at')}:{digest}"


def _messages(session: dict[str, Any]) -> list[Any]:
    messages = session.get("messages")
    return messages if isinstance(messages, list) else []


def is_turn(message: Any, role: str, content: str | None = None) -> bool:
    if not isinstance(message, dict) or message.get("role") != role:
        return False
    return content is None or message.get("content") == content


def history_files(message: dict[str, Any]) -> tuple[Attachment, ...]:
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
