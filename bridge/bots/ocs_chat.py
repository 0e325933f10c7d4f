"""Open Chat Studio through its Chat API (``OCS_TRANSPORT=chat``): each person their own OCS
participant, and their files reach the bot.

As OCS at commit a77c545 serves it (``apps/api/views/chat.py``): a client-credentials OAuth token
(scope ``chat:start``, ``bridge.bots.oauth``) starts a session on a chatbot whose "Chat Widget &
API" channel is in ``oauth`` mode, and OCS creates a new anonymous participant for it (with the
``participant_remote_id`` and ``participant_name`` given). Everything after the start goes with the
session's token (``X-Session-Token``, kept in the store: ``Store.keep_token``): files to
``upload/``, the message to ``message/`` (a task), the answer from the task's ``poll/``, OCS's own
messages and the session's end from the session's ``poll/?since=``.

- The answer is polled (about 1 s first, then a little longer each time): no worker slot is held
  while waiting (``slot``); the connection pool bounds the requests in flight.
- A session OCS no longer lets the bridge into (403 ``session_expired``, ``session_token_invalid``,
  an unknown session; 400 "Session has ended") is ``SessionGone``: the next message opens a new one.
- A task's ``error`` answered 400 is OCS's text for the person (a ``Reply``); 500 is a failure.
- A file OCS refuses (400 on upload, or over its 50 MB) is answered with OCS's words, which name
  the types it takes (a ``Reply``, not a failure: the message is not sent without its file).
- OCS ignores ``session_data`` on a start that no logged-in user makes: the only state the bridge
  can give a session is the message's ``context`` (OCS keeps it as ``remote_context``). The
  person's details, and what ``trigger_bot`` adds (``update_session``), go there, with the next
  message after they changed.
- Rate limits (OCS's ``chat_api`` scope): session starts count per channel, shared by every process
  through ``TeamBudget``; every other request per session (a 429 on a task poll is waited out).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from bridge.bots.base import BotError, History, HistoryMessage, SessionGone, SessionInfo, StateChange
from bridge.bots.http import CLOCK_SKEW, HttpBot, created_at, json_object
from bridge.bots.oauth import ClientToken
from bridge.bots.ocs import history_files, identity, is_turn, person_state
from bridge.bots.team_budget import TeamBudget, parse_rate, retry_after
from bridge.metrics import Metrics
from bridge.model import Conversation, LocalFile, Reply
from bridge.settings import BotSettings
from bridge.store.repo import Store
from bridge.store.tables import utcnow

CHAT_RATE = "300/5m"  # OCS's RATE_LIMIT_CHAT_API: session starts per channel (and requests per session)
TOKEN_LIFETIME = timedelta(days=7)  # OCS's CHAT_SESSION_TOKEN_LIFETIME (a channel may set it shorter)
KEPT = 10_000  # sessions whose token is at hand in memory (the others are read from the store)
FIRST_POLL, POLL_GROWTH, LONGEST_POLL = 1.0, 1.5, 4.0  # seconds between task polls
MAX_UPLOAD_MB = 50  # OCS's MAX_FILE_SIZE_MB, each and in total
ADMITS = "Version number requires authentication"  # chat/start/'s answer to an admitted probe
REFUSED = (
    "OCS refused to start a chat with the OAuth token (401 chat_access_denied). OCS does not say "
    "which: the chatbot has no 'Chat Widget & API' channel in 'oauth' mode; the chatbot is not among "
    "the OAuth application's chatbots; the application belongs to another team or lacks the scope "
    "'chat:start'; or the channel lists allowed domains (a server integration needs none)"
)


@dataclass(slots=True)
class _Session:
    token: str
    started_at: datetime
    state: dict[str, Any] = field(default_factory=dict)  # what the bridge knows of the session
    context: dict[str, Any] | None = None  # to send with the next message (None: nothing new)


class OcsChatBot(HttpBot):
    service = "OCS"
    follows_history = True
    accepts_files = True

    def __init__(self, settings: BotSettings):
        if not (settings.client_id and settings.client_secret and settings.experiment_id):
            raise ValueError("an OCS Chat API bot needs an OAuth client id and secret and a chatbot id")
        super().__init__(settings)
        self.chatbot = settings.experiment_id
        self.version = settings.version  # not on the Chat API: only a logged-in user may pick one
        self.oauth = ClientToken(f"{self.base}/o/token/", settings.client_id, settings.client_secret)
        rate = settings.team_rate_limit if "team_rate_limit" in settings.model_fields_set else CHAT_RATE
        self.starts = TeamBudget(self.base, f"chat:{settings.client_id}", *parse_rate(rate))
        self._patience = settings.read_timeout  # how long an answer is polled for
        self._sessions: dict[str, _Session] = {}
        self._store: Store | None = None
        self._name: str | None = None

    def attach(self, store: Store, metrics: Metrics, name: str) -> None:
        """Keep session tokens in ``store``; share the session starts' budget through it."""
        self._store = store
        self.starts.attach(store, metrics, name)

    def slot(self, bound: asyncio.Semaphore) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()  # it waits between polls: no slot held meanwhile

    def retry_after(self, raw: bytes, headers: Mapping[str, str]) -> float | None:
        return retry_after(raw, headers)

    # --- sessions ------------------------------------------------------------------------------

    async def open_session(self, conversation: Conversation) -> str:
        person = conversation.person
        state = person_state(conversation)
        payload: dict[str, Any] = {
            "chatbot_id": self.chatbot,
            "participant_remote_id": f"{conversation.channel}:{person.key}",
            "session_data": state,
        }
        if person.name:
            payload["participant_name"] = person.name
        body = await self._start(payload)
        session_id, token = body.get("session_id"), body.get("session_token")
        if not isinstance(session_id, str) or not session_id:
            raise BotError("OCS started a chat without a session id")
        chatbot = body.get("chatbot")
        if isinstance(chatbot, dict) and chatbot.get("name"):
            self._name = str(chatbot["name"])
        session = self._remember(session_id, _Session(str(token or ""), utcnow(), state, context=state))
        if self._store is not None:
            await self._store.keep_token(session_id, session.token, session.started_at)
        return session_id

    async def _start(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST chat/start/`` with the OAuth token (fetched again once if OCS refuses it: it
        expired or was revoked), drawn from the starts' budget (a 429 waits with it, twice at most)."""
        refused: str | None = None
        for attempt in range(4):
            await self.starts.take("session")
            token, (status, raw, headers) = await self._started(payload, refused)
            await self.starts.answered(status, raw, headers)
            if status == 401 and refused is None:
                refused = token
                continue
            if status == 401:
                raise BotError(REFUSED, status=401)
            if status == 429 and attempt < 3:
                continue
            body = self._read(status, raw, headers)
            if isinstance(body, dict):
                return body
            raise BotError("OCS answered a chat start that is not a JSON object")
        raise BotError("OCS refused to start a chat", retryable=True)

    async def _started(
        self, payload: dict[str, Any], refused: str | None = None
    ) -> tuple[str, tuple[int, bytes, Mapping[str, str]]]:
        """``POST chat/start/`` with a token (another than ``refused``): the token and the answer."""
        token = await self.oauth.get(self._exchange, refused)
        bearer = {"Authorization": f"Bearer {token}"}
        url = f"{self.base}/api/chat/start/"
        return token, await self._exchange("POST", url, json=payload, headers=bearer)

    async def _session(self, session_id: str) -> _Session:
        """The session's token, from memory or the store; ``SessionGone`` if none is kept, or once
        OCS's token lifetime is over."""
        session = self._sessions.get(session_id)
        if session is None and self._store is not None:
            kept = await self._store.session_token(session_id)
            if kept is not None:
                session = self._remember(session_id, _Session(*kept))
        if session is None:
            raise SessionGone("no session token is kept for this OCS chat session")
        if utcnow() - session.started_at > TOKEN_LIFETIME:
            await self._forget(session_id)
            raise SessionGone("the OCS chat session's token has expired")
        return session

    def _remember(self, session_id: str, session: _Session) -> _Session:
        if len(self._sessions) >= KEPT:  # the longest kept goes (its token stays in the store)
            self._sessions.pop(next(iter(self._sessions)))
        self._sessions[session_id] = session
        return session

    async def _chat(self, method: str, session_id: str, path: str, **request: Any) -> Any:
        """A request in the session, with its token: (status, body, headers). OCS refusing the
        session (403: token expired or invalid, unknown session; 400: ended) is ``SessionGone``."""
        session = await self._session(session_id)
        headers = {"X-Session-Token": session.token} if session.token else {}
        url = f"{self.base}/api/chat/{session_id}/{path}"
        status, raw, answer = await self._exchange(method, url, headers=headers, **request)
        body = json_object(raw)
        if status == 403 or (status == 400 and body.get("error") == "Session has ended"):
            await self._forget(session_id)
            reason = body.get("code") or body.get("error") or body.get("detail") or status
            raise SessionGone(f"OCS no longer takes this chat session ({reason})", status=status)
        return status, raw, answer

    async def _forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        if self._store is not None:
            await self._store.forget_token(session_id)

    # --- messages ------------------------------------------------------------------------------

    async def send(self, session_id: str, text: str, files: Sequence[LocalFile] = ()) -> Reply:
        session = await self._session(session_id)
        payload: dict[str, Any] = {"message": text or ", ".join(f.name for f in files)}
        if files:
            uploaded = await self._upload(session_id, files)
            if isinstance(uploaded, Reply):
                return uploaded
            payload["attachment_ids"] = uploaded
        if session.context is not None:
            payload["context"] = session.context
        status, raw, headers = await self._chat("POST", session_id, "message/", json=payload)
        body = self._read(status, raw, headers, session=True)
        session.context = None
        task = body.get("task_id") if isinstance(body, dict) else None
        if not isinstance(task, str) or not task:
            raise BotError("OCS took the message without a task id")
        return await self._answer(session_id, task)

    async def _upload(self, session_id: str, files: Sequence[LocalFile]) -> list[int] | Reply:
        """The files uploaded to the session: their ids; or OCS's refusal, for the person."""
        limit = MAX_UPLOAD_MB * 1024 * 1024
        if big := next((f for f in files if f.size > limit), None):
            return Reply(text=f"File '{big.name}' exceeds maximum size of {MAX_UPLOAD_MB}MB")
        if sum(f.size for f in files) > limit:
            return Reply(text=f"Total file size exceeds maximum of {MAX_UPLOAD_MB}MB")
        with contextlib.ExitStack() as opened:
            form = aiohttp.FormData()
            for file in files:
                content = opened.enter_context(file.path.open("rb"))
                form.add_field("files", content, filename=file.name, content_type=file.content_type)
            status, raw, headers = await self._chat("POST", session_id, "upload/", data=form)
        refusal = json_object(raw).get("error")
        if status == 400 and isinstance(refusal, str):
            return Reply(text=refusal)  # OCS's words: the file and the types it takes
        body = self._read(status, raw, headers, session=True)
        listed = body.get("files") if isinstance(body, dict) else None
        ids = [
            item["id"] for item in listed or () if isinstance(item, dict) and isinstance(item.get("id"), int)
        ]
        if len(ids) != len(files):
            raise BotError("OCS answered an upload without the files' ids")
        return ids

    async def _answer(self, session_id: str, task: str) -> Reply:
        """The task's answer, polled with growing pauses (nothing held meanwhile). Past the read
        timeout, a retryable failure: the answer is then found in the session (``recover``)."""
        deadline = time.monotonic() + self._patience
        pause = FIRST_POLL
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * POLL_GROWTH, LONGEST_POLL)
            try:
                status, raw, headers = await self._chat("GET", session_id, f"{task}/poll/")
            except SessionGone:
                raise
            except BotError:  # the connection failed: the task goes on in OCS
                continue
            body = json_object(raw)
            if status == 200 and body.get("status") == "complete" and isinstance(body.get("message"), dict):
                return _reply(body["message"])
            if body.get("status") == "error" and status == 400:
                return Reply(text=str(body.get("error") or ""))  # OCS's text for the person
            if body.get("status") == "error":
                raise BotError(f"OCS could not answer ({status}): {body.get('error')}", status=status)
            if status == 429:
                pause = max(pause, retry_after(raw, headers) or pause)
            elif status != 200 and status not in (502, 503, 504):
                self._read(status, raw, headers, session=True)  # raises
        raise BotError("OCS is still answering", retryable=True)

    async def recover(self, session_id: str, text: str, since: datetime) -> Reply | None:
        """OCS keeps the turn in the session: find it (sent since the earlier attempt) and the
        answer after it in ``poll/``; still unanswered: retry later (for up to the read timeout)."""
        try:
            messages, _ = await self._poll(session_id, since - CLOCK_SKEW)
        except SessionGone:
            return None
        for index in range(len(messages) - 1, -1, -1):
            turn = messages[index]
            if is_turn(turn, "user", text):
                answer = next((m for m in messages[index + 1 :] if is_turn(m, "assistant")), None)
                if answer is not None:
                    return _reply(answer)
                if datetime.now(UTC) - created_at(turn) > timedelta(seconds=self._patience):
                    return None  # it failed in OCS without an answer: send it again
                raise BotError("OCS is still answering an earlier attempt", retryable=True)
        return None

    async def _poll(self, session_id: str, since: datetime | None) -> tuple[list[dict[str, Any]], str]:
        """The session's messages after ``since`` (every page), and its ``session_status``."""
        params = {"since": _iso(since)} if since is not None else {}
        messages: list[dict[str, Any]] = []
        while True:
            status, raw, headers = await self._chat("GET", session_id, "poll/", params=params)
            body = self._read(status, raw, headers, session=True)
            body = body if isinstance(body, dict) else {}
            page = [m for m in body.get("messages") or () if isinstance(m, dict)]
            messages += page
            if not body.get("has_more") or not page:
                return messages, str(body.get("session_status") or "active")
            params = {"since": str(page[-1].get("created_at"))}

    async def history(self, session_id: str, cursor: str | None) -> History:
        """What OCS wrote by itself since ``cursor`` (assistant messages that answer no user turn),
        and whether the session ended. The cursor is the newest assistant message's ``created_at``:
        a user turn still unanswered is read again with its answer."""
        since = created_at({"created_at": cursor}) if cursor else None
        messages, status = await self._poll(session_id, since)
        turns = [m for m in messages if is_turn(m, "user") or is_turn(m, "assistant")]
        found = [
            HistoryMessage(id=identity(m), text=str(m.get("content") or ""), attachments=history_files(m))
            for index, m in enumerate(turns)
            if m["role"] == "assistant" and (index == 0 or turns[index - 1]["role"] != "user")
        ]
        answers = [m for m in turns if m["role"] == "assistant"]
        position = str(answers[-1].get("created_at")) if answers else cursor
        return History(found, position, closed=status == "ended")

    async def update_session(self, session_id: str, change: StateChange | None = None) -> SessionInfo:
        """The Chat API cannot change a session's state: the change goes with the next message, as
        its ``context`` (OCS keeps it as the state's ``remote_context``)."""
        session = await self._session(session_id)
        if change is not None:
            changed = change(dict(session.state))
            if changed != session.state:
                session.state = session.context = changed
        return SessionInfo(url=f"{self.base}/api/chat/{session_id}/")

    async def end_session(self, session_id: str) -> None:
        """The Chat API has no end: the bridge forgets the session (and its token); OCS keeps it
        until it ends it itself."""
        await self._forget(session_id)

    async def display_name(self) -> str | None:
        """The chatbot's name as the last session start named it."""
        return self._name

    async def check(self) -> str:
        """Gets a token, and asks ``chat/start/`` for a version (only a logged-in user may): an
        admitted caller is told so, and nothing is started."""
        if self.version is not None:
            raise BotError(
                "OCS_EXPERIMENT_VERSION cannot be used with OCS_TRANSPORT=chat: OCS lets only a "
                "logged-in user pick a version on its Chat API (the default version answers)"
            )
        _, (status, raw, headers) = await self._started({"chatbot_id": self.chatbot, "version_number": 1})
        if status == 403 and json_object(raw).get("error") == ADMITS:
            return (
                f"OCS chatbot {self.chatbot} at {self.base}: the OAuth client may start chats (Chat API); "
                "every person is their own OCS participant"
            )
        if status == 404:
            raise BotError(f"OCS has no chatbot {self.chatbot} (OCS_EXPERIMENT_ID)", status=404)
        if status == 400:
            raise BotError(f"OCS_EXPERIMENT_ID {self.chatbot!r} is not a chatbot id (a UUID)", status=400)
        if status == 401:
            raise BotError(REFUSED, status=401)
        self._read(status, raw, headers)
        raise BotError(f"OCS answered the chat start check with {status}", status=status)


def _reply(message: dict[str, Any]) -> Reply:
    return Reply(text=str(message.get("content") or ""), attachments=history_files(message))


def _iso(at: datetime) -> str:
    """A time as OCS's ``since`` takes it (``Z``: a ``+`` would read as a space in a query)."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
