"""A fake Open Chat Studio over real HTTP: the API channel and the session endpoints.

Faithful to what a real OCS (commit a77c545) answered, as recorded in
``/work/shared/recorded/ocs-a77c545/``::

    async with FakeOCS() as ocs:
        client = OcsBot(base_url=ocs.url, api_key=ocs.api_key, experiment=ocs.experiment_id)
        ocs.fail_next(503)
        ...
        assert ocs.messages(session_id) == ["hello"]

What it does as OCS does:

- Experiment and session ids are UUIDs (others: 400 on create, 404 elsewhere). A session's
  participant is the API key's user (every key of the user: one participant); one created with
  another ``participant`` answers every message with a 500 ("cannot impersonate").
- Statuses ``setup`` (created), ``active`` (a message came), ``pending-review`` or ``complete``
  (ended, ``end``):
  an ended session still accepts messages, answers 200, and is ``active`` again.
- Unknown experiment with a ``session``: 500 HTML; without: 404. Unknown version, missing
  ``message``, pipeline runtime errors: 500 HTML pages (a runtime error stores the user turn and
  OCS's apology); a misconfigured pipeline (``pipeline_error = "config"``) answers 200 with the
  apology as the response. ``""`` is stored as ``[empty message]``.
- ``update_state`` with ``{}``: 400 ``{"error": …}``; ending an unknown session: 404
  ``{"error": "Session not found:{id}"}`` (sic); the session's history has ``system`` summaries
  (``summarise``), ``metadata.trace_info`` (a user turn and its answer share one trace; user turns
  have ``ocs_attachment_file_ids``), ``tags`` and ``usage``; the experiment lists ``versions``, and
  a session's ``experiment.version_number`` is the working version. A create answers 201 with
  ``Location``; a session the Chat API started shows ``platform: "api"`` and the remote id.
- With ``limit_rate(limit, window)``: OCS's per-team limit, fixed windows, ``X-RateLimit-*`` on
  every answer, 429 ``{"detail": "Rate limit exceeded.", "available_in": N}`` with ``Retry-After``.

Injected failures (``fail_next``) are taken before the request is handled. Only kind ``500`` and
``"timeout"`` let the message reach the bot: a 500 stores it with the apology, a timeout answers
(and stores) after ``timeout_sleep`` seconds. 502/503/504/429/"drop" store nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import itertools
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from fakes.ocs_chat import FakeChat
from fakes.ocs_records import (
    _INVALID,
    BODY,
    ERROR_REPLY,
    EXPERIMENT,
    FAIL_500,
    KEY,
    NO_EXPERIMENT,
    NOT_FOUND,
    Call,
    FailureKind,
    FakeMessage,
    FakeSession,
    RateLimit,
    ReplyFn,
    _default_reply,
    _Failure,
    _now,
    error_page,
    injected,
    is_uuid,
)
from fakes.ocs_sessions import SessionEndpoints
from fakes.server import serve_locally

__all__ = ["ERROR_REPLY", "EXPERIMENT", "FakeOCS"]
USER = "admin@example.com"  # the user of ``api_key`` and ``read_only_key``


class FakeOCS(SessionEndpoints):
    """The fake server. Attributes may be changed while it runs."""

    def __init__(
        self,
        prefix: str = "",
        *,
        api_key: str = "test-key",
        read_only_key: str = "ro-key",
        experiment_id: str = EXPERIMENT,
        versions: set[int] | None = None,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.api_key = api_key
        self.read_only_key = read_only_key
        self.other_keys: set[str] = set()
        """More read-write keys, each of its own user (so its own participant)."""
        self.experiment_id = experiment_id
        self.other_experiments: set[str] = set()
        self.versions: set[int] = {1} if versions is None else versions
        """The published versions; the working version (the next number) answers too."""
        self.latency = 0.0
        """Seconds to wait before answering ``incoming_message``."""
        self.answering = 0
        """``incoming_message`` requests being answered right now."""
        self.max_answering = 0
        """The most ``incoming_message`` requests it was answering at the same time."""
        self.timeout_sleep = 3600.0
        """How long a ``"timeout"`` failure keeps the request open (cancelled on shutdown)."""
        self.reply: ReplyFn = _default_reply
        """``reply(text, session) -> text | (text, [(file_name, Path | bytes)])``; may be async.
        If it raises, the fake answers 500 like a failing OCS pipeline (message stored)."""
        self.pipeline_error: Literal["config", "runtime"] | None = None
        """The bot is broken: ``"config"`` answers 200 with OCS's apology, ``"runtime"`` a 500 page."""
        self.rate_limit: RateLimit | None = None
        self.calls: list[Call] = []
        self.sessions: dict[str, FakeSession] = {}
        self._failures: list[_Failure] = []
        self._files: dict[str, tuple[str, Path | bytes]] = {}
        self._file_ids = itertools.count(1)
        self._trace_ids = itertools.count(1)
        self._inflight: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.chat = FakeChat(self)
        """OCS's Chat API and OAuth token endpoint (``fakes.ocs_chat``)."""

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> FakeOCS:
        app = web.Application(middlewares=[self._middleware])
        p = self.prefix
        app.router.add_post(f"{p}/api/sessions/", self._create_session)
        app.router.add_get(f"{p}/api/experiments/{{id}}/", self._get_experiment)
        app.router.add_get(f"{p}/api/sessions/{{id}}/", self._get_session)
        app.router.add_post(f"{p}/api/sessions/{{id}}/end_experiment_session/", self._end_session)
        app.router.add_patch(f"{p}/api/sessions/{{id}}/update_state/", self._update_state)
        app.router.add_post(f"{p}/channels/api/{{experiment}}/incoming_message", self._incoming)
        app.router.add_post(
            f"{p}/channels/api/{{experiment}}/v{{version:\\d+}}/incoming_message", self._incoming
        )
        app.router.add_get(f"{p}/files/{{file_id}}/{{name}}", self._file)
        self.chat.mount(app, p)
        self._runner, self.url = await serve_locally(app, self.prefix)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in list(self._inflight):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- test helpers ----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The bridge's settings that point it at this server."""
        return {
            "OCS_BASE_URL": self.url,
            "OCS_API_KEY": self.api_key,
            "OCS_EXPERIMENT_ID": self.experiment_id,
        }

    def fail_next(self, kind: FailureKind, times: int = 1, *, on: str = "incoming_message") -> None:
        """Make the next ``times`` requests whose path contains ``on`` fail with ``kind``.

        ``on=""`` matches every API request. Failures are used in the order they were queued.
        """
        self._failures.extend(_Failure(kind, on) for _ in range(times))

    def limit_rate(self, limit: int, window: float = 300.0) -> None:
        """Enforce OCS's per-team rate limit: ``limit`` requests per ``window`` seconds."""
        self.rate_limit = RateLimit(limit, window)

    def messages(self, session_id: str) -> list[str]:
        """The user messages stored in a session, oldest first."""
        return [m.content for m in self.sessions[session_id].messages if m.role == "user"]

    def says(self, session_id: str, text: str, files: list[tuple[str, Path | bytes]] | None = None) -> None:
        """OCS adds an assistant message to the session by itself (a timeout trigger, a scheduled
        or triggered message): only the session's history (``GET /api/sessions/{id}/``) shows it."""
        attachments = [self._serve(name, content) for name, content in files or ()]
        files_json = [{"name": a["file_name"], "content_url": a["link"]} for a in attachments]
        self._add(self.sessions[session_id], FakeMessage("assistant", text, _now(), files_json))

    def end(
        self,
        session_id: str,
        goodbye: str | None = None,
        status: Literal["pending-review", "complete"] = "pending-review",
    ) -> None:
        """OCS ends the session by itself (a timeout trigger's "end conversation", its UI), saying
        ``goodbye`` first if given: ``pending-review``, or ``complete`` (set in OCS's UI)."""
        if goodbye is not None:
            self.says(session_id, goodbye)
        self.sessions[session_id].status = status

    def summarise(self, session_id: str, summary: str = "The conversation so far, in short.") -> None:
        """OCS compresses the history: a ``system`` summary entry appears before the newest message."""
        self.sessions[session_id].messages[-1].summary = summary

    def new_session(self, *, key: str | None = None, experiment: str | None = None) -> FakeSession:
        """Create a session directly (as if OCS had made it), the participant ``key``'s user."""
        now = _now()
        session = FakeSession(
            id=str(uuid.uuid4()),
            experiment=experiment or self.experiment_id,
            state={},
            owner=self._user(key or self.api_key),
            created_at=now,
            updated_at=now,
        )
        self.sessions[session.id] = session
        return session

    # --- plumbing --------------------------------------------------------------------------

    def _key_of(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.headers.get("X-api-key")

    def _read_only(self, key: str) -> bool | None:
        """True/False for a known key, None for an unknown one."""
        rw = [self.api_key, *self.other_keys]
        if any(hmac.compare_digest(key, k) for k in rw):
            return False
        if hmac.compare_digest(key, self.read_only_key):
            return True
        return None

    def _user(self, key: str) -> str:
        return USER if key in (self.api_key, self.read_only_key) else f"{key}@example.com"

    def _take_failure(self, path: str) -> FailureKind | None:
        for i, failure in enumerate(self._failures):
            if failure.on in path:
                del self._failures[i]
                return failure.kind
        return None

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.chat.owns(request.path):  # its own credentials, and multipart bodies
            return await self.chat.handle(request, handler)
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = _INVALID
        call = Call(request.method, request.path, dict(request.headers), None if body is _INVALID else body)
        self.calls.append(call)
        if request.path.startswith(f"{self.prefix}/files/"):
            return await handler(request)
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            response = await self._answer(request, handler, body)
            call.status.append(response.status)
            return response
        finally:
            self._inflight.discard(task)

    async def _answer(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]], body: Any
    ) -> web.StreamResponse:
        key = self._key_of(request)
        if not key:
            return self._unauthorized("Authentication credentials were not provided.")
        read_only = self._read_only(key)
        if read_only is None:
            return self._unauthorized("Invalid token.")
        limits: dict[str, str] = {}
        if self.rate_limit is not None:
            allowed, limits = self.rate_limit.count()
            if not allowed:
                wait = int(limits["Retry-After"])
                refusal = {"detail": "Rate limit exceeded.", "available_in": wait}
                return web.json_response(refusal, status=429, headers=limits)
        if read_only and request.method != "GET":
            detail = "You do not have permission to perform this action."
            return web.json_response({"detail": detail}, status=403, headers=limits)
        if body is _INVALID:
            return web.json_response({"detail": "JSON parse error."}, status=400)
        request[KEY] = key
        request[BODY] = body
        failure = await injected(request, self._take_failure(request.path), self.timeout_sleep)
        response = failure if failure is not None else await handler(request)
        response.headers.update(limits)
        return response

    @staticmethod
    def _unauthorized(detail: str) -> web.Response:
        return web.json_response(
            {"detail": detail}, status=401, headers={"WWW-Authenticate": 'Bearer realm="api"'}
        )

    def _known_experiment(self, experiment: object) -> bool:
        return experiment == self.experiment_id or experiment in self.other_experiments

    # --- the API channel -------------------------------------------------------------------

    async def _incoming(self, request: web.Request) -> web.Response:
        experiment = request.match_info["experiment"]
        if not is_uuid(experiment):
            return web.json_response(NOT_FOUND, status=404)
        body = request[BODY] if isinstance(request[BODY], dict) else {}
        user = self._user(request[KEY])
        if session_id := body.get("session"):
            if not self._known_experiment(experiment):
                return error_page("DoesNotExist", "Experiment matching query does not exist.")
            found = self.sessions.get(str(session_id))
            theirs = found is not None and (found.owner == user or found.impersonates)
            if found is None or not theirs or found.experiment != experiment:
                return web.json_response(NOT_FOUND, status=404)
            session = found
        elif not self._known_experiment(experiment):
            return web.json_response(NO_EXPERIMENT, status=404)
        else:
            session = self._resume(request[KEY], experiment)
        version = request.match_info.get("version")
        if version is not None and int(version) not in self.versions | {max(self.versions) + 1}:
            return error_page("VersionNotFound", f"Family 1 has no version with version_number={version}")
        if not isinstance(body.get("message"), str):
            return error_page("KeyError", "'message'")
        if session.impersonates:
            return error_page("Exception", f"User {user} cannot impersonate participant {session.owner}")
        text: str = body["message"] or "[empty message]"
        self._add(session, FakeMessage("user", text, _now()))
        session.status = "active"  # an ended session too: OCS reopens it
        if request.get(FAIL_500) or self.pipeline_error == "runtime":
            return self._apology(session, error_page("Exception", "the pipeline failed"))
        if self.pipeline_error == "config":
            return self._apology(session, web.json_response({"response": ERROR_REPLY, "attachments": []}))
        self.answering += 1
        self.max_answering = max(self.max_answering, self.answering)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            result = self.reply(text, session)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            return self._apology(session, error_page("Exception", "the bot's reply failed"))
        finally:
            self.answering -= 1
        response, files = (result, []) if isinstance(result, str) else result
        attachments = [self._serve(name, content) for name, content in files]
        files_json = [{"name": a["file_name"], "content_url": a["link"]} for a in attachments]
        self._add(session, FakeMessage("assistant", response, _now(), files_json))
        return web.json_response({"response": response, "attachments": attachments})

    def _apology(self, session: FakeSession, answer: web.Response) -> web.Response:
        """OCS stores its apology as the bot's turn, then answers ``answer``."""
        self._add(session, FakeMessage("assistant", ERROR_REPLY, _now()))
        return answer

    def _add(self, session: FakeSession, message: FakeMessage) -> None:
        """Store a message: the bot's answer to a user turn is traced with it, anything else alone."""
        answers = message.role == "assistant" and session.messages and session.messages[-1].role == "user"
        message.trace_id = session.messages[-1].trace_id if answers else next(self._trace_ids)
        session.messages.append(message)
        session.updated_at = message.created_at

    def _resume(self, key: str, experiment: str) -> FakeSession:
        """OCS without ``session``: the key's user's newest open session, or a new one."""
        for session in reversed(self.sessions.values()):
            if session.owner == self._user(key) and session.experiment == experiment and not session.ended:
                return session
        return self.new_session(key=key, experiment=experiment)

    def _serve(self, name: str, content: Path | bytes) -> dict[str, str]:
        file_id = str(next(self._file_ids))
        self._files[file_id] = (name, content)
        return {"file_name": name, "link": f"{self.url}/files/{file_id}/{name}"}

    async def _file(self, request: web.Request) -> web.StreamResponse:
        entry = self._files.get(request.match_info["file_id"])
        if entry is None or entry[0] != request.match_info["name"]:
            raise web.HTTPNotFound()
        content = entry[1]
        if isinstance(content, Path):
            return web.FileResponse(content)
        return web.Response(body=content, content_type="application/octet-stream")
