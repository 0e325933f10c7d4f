"""OCS's Chat API and its OAuth token endpoint, on the fake OCS's server (``FakeOCS.chat``).

As OCS at commit a77c545 serves them (``apps/api/views/chat.py``, ``apps/api/authentication.py``
``ChatOAuthAuthentication``, ``apps/api/permissions.py`` ``SessionAccessPermission``,
``apps/api/session_tokens.py``, ``apps/oauth/``, django-oauth-toolkit's token view) and as
recorded in ``/work/shared/recorded/ocs-a77c545/chat-api-and-more.txt``:

- ``POST /o/token/``: client credentials (HTTP Basic or in the form); 401 ``{"error":
  "invalid_client"}``, 400 ``unsupported_grant_type`` / ``unauthorized_client`` / ``invalid_scope``.
  Tokens expire after ``token_seconds`` (``expire_tokens()`` ends them at once).
- ``POST /api/chat/start/``: with a bearer token, every refusal is one 401 ``chat_access_denied``
  (channel not in ``oauth`` mode, bad or expired token, scope, chatbot not on the application);
  an unknown chatbot 404; ``version_number`` without a logged-in user 403. Each start creates a
  new anonymous participant (``participants``) and a session token. ``session_data`` is ignored
  (no logged-in user).
- Session endpoints want ``X-Session-Token``: 403 ``{"error", "code"}`` ``session_token_required``,
  ``session_token_invalid``, ``session_expired`` (7 days after the start: ``age()``); an unknown
  session 403 ``{"detail": "Authentication credentials were not provided."}``; an ended one
  (``FakeOCS.end``) 400 ``{"error": "Session has ended"}`` on upload and message.
- ``upload/``: OCS's extension list (text types always), 50 MB each and in total; ``message/``:
  ``attachment_ids`` of this session's uploads, ``context`` kept as ``remote_context``; 202 and a
  task answered by ``FakeOCS.reply`` (``latency`` too); ``fail_task(400|500)`` fails the next task.
- Task poll: ``processing`` (also for an unknown task), ``complete``, 400/500 ``error``. Session
  poll: ``since`` exclusive, ``limit`` (50), ``has_more``, ``session_status``.
- ``limit_rate(n, window)``: the ``chat_api`` limit, per session (starts: per channel).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import inspect
import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from aiohttp import web

from fakes.ocs_chat_records import EXTENSIONS, ChatSession, Participant, Received, Task, Upload
from fakes.ocs_records import (
    NO_EXPERIMENT,
    Call,
    FakeMessage,
    FakeSession,
    RateLimit,
    _message_json,
    _now,
    experiment_json,
    injected,
    is_uuid,
)

if TYPE_CHECKING:
    from fakes.ocs import FakeOCS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SCOPE = "chat:start"
MACHINE_SCOPES = {"chatbots:read", "chatbots:interact", "chat:start", "sessions:read", "sessions:write"}
DENIED_IMAGES = {".bmp", ".svg"}
MAX_MB = 50
TOKEN_LIFETIME = timedelta(days=7)
DENIED = {"error": "Authentication required to chat with this chatbot", "code": "chat_access_denied"}
NO_CREDENTIALS = {"detail": "Authentication credentials were not provided."}
DEFAULT_ERROR = (
    "Sorry something went wrong. This was likely an intermittent error related to load."
    "Please try again, and wait a few minutes if this keeps happening."
)


class FakeChat:
    """OCS's Chat API. Attributes may be changed while it runs."""

    def __init__(self, ocs: FakeOCS) -> None:
        self.ocs = ocs
        self.client_id = "bridge-client"
        self.client_secret = "bridge-secret"
        self.client_credentials = True  # the application's grant type
        self.scopes = set(MACHINE_SCOPES)  # what the application may be granted
        self.chatbots = {ocs.experiment_id}  # the application's allowed chatbots
        self.oauth_mode = True  # the chatbot's "Chat Widget & API" channel is in ``oauth`` mode
        self.token_seconds = 36000  # django-oauth-toolkit's default
        self.tokens: dict[str, tuple[datetime, set[str]]] = {}  # access token -> (expires, scopes)
        self.token_requests = 0
        self.participants: list[Participant] = []
        self.chats: dict[str, ChatSession] = {}
        self.uploads: dict[int, Upload] = {}
        self.received: list[Received] = []
        self.tasks: dict[str, Task] = {}
        self.rate: tuple[int, float] | None = None
        self._limits: dict[str, RateLimit] = {}
        self._task_failures: list[tuple[int, str]] = []
        self._ids = itertools.count(1)

    # --- test helpers ----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The settings of a bridge on this Chat API."""
        return self.ocs.env() | {
            "OCS_TRANSPORT": "chat",
            "OCS_CLIENT_ID": self.client_id,
            "OCS_CLIENT_SECRET": self.client_secret,
        }

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now."""
        self.tokens = {token: (datetime.now(UTC), scopes) for token, (_, scopes) in self.tokens.items()}

    def age(self, session_id: str, days: float) -> None:
        """The session started ``days`` earlier than it did (its token expires 7 days after)."""
        self.chats[session_id].created_at -= timedelta(days=days)

    def fail_task(self, status: int, error: str = DEFAULT_ERROR) -> None:
        """The next task fails: 400 (an error OCS shows the person) or 500."""
        self._task_failures.append((status, error))

    def limit_rate(self, limit: int, window: float = 300.0) -> None:
        self.rate = (limit, window)

    def clear(self) -> None:
        """Forget every session, participant, upload and task (the bench's runs)."""
        for kept in (self.chats, self.uploads, self.tasks, self._limits):
            kept.clear()
        self.participants.clear()
        self.received.clear()

    # --- plumbing --------------------------------------------------------------------------

    def mount(self, app: web.Application, prefix: str) -> None:
        self.prefix = prefix
        app.router.add_post(f"{prefix}/o/token/", self._token)
        app.router.add_post(f"{prefix}/api/chat/start/", self._start)
        app.router.add_post(f"{prefix}/api/chat/{{sid}}/upload/", self._upload)
        app.router.add_post(f"{prefix}/api/chat/{{sid}}/message/", self._message)
        app.router.add_get(f"{prefix}/api/chat/{{sid}}/poll/", self._poll)
        app.router.add_get(f"{prefix}/api/chat/{{sid}}/{{task}}/poll/", self._task_poll)

    def owns(self, path: str) -> bool:
        return path.startswith((f"{self.ocs.prefix}/api/chat/", f"{self.ocs.prefix}/o/token/"))

    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record the call, take an injected failure (``FakeOCS.fail_next``), then answer."""
        body = await request.json() if request.content_type == "application/json" else None
        call = Call(request.method, request.path, dict(request.headers), body)
        self.ocs.calls.append(call)
        kind = self.ocs._take_failure(request.path)
        response: web.StreamResponse | None = None
        if kind is not None:
            response = await injected(request, kind, self.ocs.timeout_sleep)
        if response is None:
            response = await handler(request)
        call.status.append(response.status)
        return response

    def _limited(self, identity: str) -> web.Response | None:
        if self.rate is None:
            return None
        allowed, headers = self._limits.setdefault(identity, RateLimit(*self.rate)).count()
        if allowed:
            return None
        wait = int(headers["Retry-After"])
        return web.json_response(
            {"detail": "Rate limit exceeded.", "available_in": wait}, status=429, headers=headers
        )

    # --- OAuth -----------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if request.headers.get("Authorization", "").startswith("Basic "):
            pair = base64.b64decode(request.headers["Authorization"][6:]).decode()
            client_id, _, secret = (unquote_plus(part) for part in pair.partition(":"))
        self.token_requests += 1
        same_id = hmac.compare_digest(client_id, self.client_id)
        if not (same_id and hmac.compare_digest(secret, self.client_secret)):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if not self.client_credentials:
            return web.json_response({"error": "unauthorized_client"}, status=400)
        scopes = set(str(form.get("scope", "")).split()) or set(self.scopes)
        if not scopes <= self.scopes:
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = uuid.uuid4().hex
        self.tokens[token] = (datetime.now(UTC) + timedelta(seconds=self.token_seconds), scopes)
        answer = {"access_token": token, "expires_in": self.token_seconds, "token_type": "Bearer"}
        return web.json_response(answer | {"scope": " ".join(sorted(scopes))})

    def _admitted(self, header: str, chatbot: str) -> bool:
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        expires, scopes = self.tokens.get(token, (datetime.min.replace(tzinfo=UTC), set()))
        return expires > datetime.now(UTC) and SCOPE in scopes and chatbot in self.chatbots

    # --- the Chat API ----------------------------------------------------------------------

    async def _start(self, request: web.Request) -> web.Response:
        body = await request.json()
        chatbot = str(body.get("chatbot_id", ""))
        header = request.headers.get("Authorization", "")
        if header and not is_uuid(chatbot):
            return web.json_response({"detail": "chatbot_id must be a valid UUID"}, status=400)
        known = self.ocs._known_experiment(chatbot)
        if header and known and not (self.oauth_mode and self._admitted(header, chatbot)):
            return web.json_response(DENIED, status=401, headers={"WWW-Authenticate": 'Bearer realm="api"'})
        if limited := self._limited("channel"):
            return limited
        if not known:
            return web.json_response(NO_EXPERIMENT, status=404)
        if body.get("version_number") is not None:
            return web.json_response({"error": "Version number requires authentication"}, status=403)
        participant = Participant(
            f"anon:{uuid.uuid4()}", str(body.get("participant_remote_id", "")), body.get("participant_name")
        )
        self.participants.append(participant)
        session = self.ocs.new_session(experiment=chatbot)
        session.owner, session.status = participant.identifier, "active"
        session.platform, session.remote_id = "api", participant.remote_id
        token = f"{uuid.uuid4().hex}:{uuid.uuid4().hex}"
        self.chats[session.id] = ChatSession(token, datetime.now(UTC), participant)
        chatbot_json = experiment_json(self.ocs.url, chatbot, self.ocs.versions)
        answer = {
            "session_id": session.id,
            "session_token": token,
            "chatbot": chatbot_json,
            "participant": {"identifier": participant.identifier, "remote_id": participant.remote_id},
        }
        return web.json_response(answer, status=201)

    def _session(self, request: web.Request) -> tuple[FakeSession, ChatSession] | web.Response:
        """The session the request may use, or OCS's refusal (``SessionAccessPermission``)."""
        sid = request.match_info["sid"]
        chat = self.chats.get(sid)
        if chat is None or sid not in self.ocs.sessions:
            return web.json_response(NO_CREDENTIALS, status=403)
        token = request.headers.get("X-Session-Token")
        if not token:
            return web.json_response(
                {"error": "Session token required", "code": "session_token_required"}, status=403
            )
        if not hmac.compare_digest(token, chat.token):
            return web.json_response(
                {"error": "Invalid session token", "code": "session_token_invalid"}, status=403
            )
        if datetime.now(UTC) - chat.created_at > TOKEN_LIFETIME:
            return web.json_response({"error": "Session has expired", "code": "session_expired"}, status=403)
        return self._limited(f"session:{sid}") or (self.ocs.sessions[sid], chat)

    async def _upload(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if isinstance(found, web.Response):
            return found
        session, _ = found
        if session.ended:
            return web.json_response({"error": "Session has ended"}, status=400)
        files = [f for f in (await request.post()).getall("files", []) if isinstance(f, web.FileField)]
        if not files:
            return web.json_response({"error": "No files provided"}, status=400)
        contents = [f.file.read() for f in files]
        for file, data in zip(files, contents, strict=True):
            if refusal := _refused(file.filename, file.content_type, len(data)):
                return web.json_response({"error": refusal}, status=400)
        if sum(map(len, contents)) > MAX_MB * 1024 * 1024:
            return web.json_response({"error": f"Total file size exceeds maximum of {MAX_MB}MB"}, status=400)
        listed = []
        for file, data in zip(files, contents, strict=True):
            upload = Upload(next(self._ids), session.id, file.filename, file.content_type, data)
            self.uploads[upload.id] = upload
            listed.append(
                {"id": upload.id, "name": upload.name, "size": len(data), "content_type": upload.content_type}
            )
        return web.json_response({"files": listed}, status=201)

    async def _message(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if isinstance(found, web.Response):
            return found
        session, chat = found
        body = await request.json()
        text = body.get("message")
        if not isinstance(text, str) or not text.strip():
            return web.json_response({"message": ["This field may not be blank."]}, status=400)
        if session.ended:
            return web.json_response({"error": "Session has ended"}, status=400)
        ids = list(body.get("attachment_ids") or [])
        if any(i not in self.uploads or self.uploads[i].session_id != session.id for i in ids):
            return web.json_response({"error": "One or more file IDs are invalid"}, status=400)
        context = body.get("context") or {}
        self.received.append(Received(session.id, text, ids, context))
        self.ocs._add(session, FakeMessage("user", text, _now()))  # the task stores it at once
        if context:
            chat.state["remote_context"] = context
        task_id = str(uuid.uuid4())
        self.tasks[task_id] = task = Task(session.id)
        runner = asyncio.create_task(self._run(task, session, text))
        self.ocs._inflight.add(runner)
        runner.add_done_callback(self.ocs._inflight.discard)
        return web.json_response({"task_id": task_id, "status": "processing"}, status=202)

    async def _run(self, task: Task, session: FakeSession, text: str) -> None:
        """OCS's celery task: the bot's answer to the user turn (or an error)."""
        self.ocs.answering += 1
        self.ocs.max_answering = max(self.ocs.max_answering, self.ocs.answering)
        try:
            if self.ocs.latency:
                await asyncio.sleep(self.ocs.latency)
            if self._task_failures:
                task.error = self._task_failures.pop(0)
                return
            result = self.ocs.reply(text, session)
            if inspect.isawaitable(result):
                result = await result
            answer, files = (result, []) if isinstance(result, str) else result
            served = [self.ocs._serve(name, content) for name, content in files]
            listed = [{"name": f["file_name"], "content_url": f["link"]} for f in served]
            task.message = FakeMessage("assistant", answer, _now(), listed)
            self.ocs._add(session, task.message)
        except Exception:
            task.error = (500, DEFAULT_ERROR)
        finally:
            self.ocs.answering -= 1
            task.done = True

    async def _task_poll(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if isinstance(found, web.Response):
            return found
        task = self.tasks.get(request.match_info["task"])
        if task is not None and task.session_id != request.match_info["sid"]:
            return web.json_response({"detail": "Not found."}, status=404)
        if task is None or not task.done:
            return web.json_response({"message": None, "status": "processing"})
        if task.error is not None:
            return web.json_response({"error": task.error[1], "status": "error"}, status=task.error[0])
        assert task.message is not None
        return web.json_response({"message": _message_json(task.message), "status": "complete"})

    async def _poll(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if isinstance(found, web.Response):
            return found
        session, _ = found
        messages = session.messages
        if since := request.query.get("since"):
            try:
                after = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                error = {"error": "Invalid 'since' parameter format. Use ISO format."}
                return web.json_response(error, status=400)
            messages = [m for m in messages if _at(m) > after]
        limit = int(request.query.get("limit", 50))
        page = messages[: limit + 1]
        answer = {
            "messages": [_message_json(m) for m in page[:limit]],
            "has_more": len(page) > limit,
            "session_status": "ended" if session.ended else "active",
        }
        return web.json_response(answer)


def _at(message: FakeMessage) -> datetime:
    return datetime.fromisoformat(message.created_at.replace("Z", "+00:00"))


def _refused(name: str, content_type: str, size: int) -> str | None:
    """OCS's ``validate_file_upload``: why a file is refused, if it is."""
    if size > MAX_MB * 1024 * 1024:
        return f"File '{name}' exceeds maximum size of {MAX_MB}MB"
    ext = PurePath(name).suffix.lower()
    if ext in DENIED_IMAGES:
        return f"The image `{name}` is not a supported image type. Supported types: GIF, JPEG, PNG, WEBP."
    if content_type.split("/")[0] != "text" and ext not in EXTENSIONS:
        return f"File type '{ext}' is not supported. Allowed types: {', '.join(EXTENSIONS)}"
    return None
