"""A fake Open Chat Studio over real HTTP: the API channel and the session endpoints.

Faithful to ``REFERENCE.md`` ("OCS: the API channel"); a few choices are documented where OCS
itself is vague::

    async with FakeOCS() as ocs:
        client = OcsBot(base_url=ocs.url, api_key=ocs.api_key, experiment=ocs.experiment_id)
        ocs.fail_next(503)
        ...
        assert ocs.messages(session_id) == ["hello"]

Choices of the fake:

- A session belongs to the key that created it (one key is one OCS participant). The session
  endpoints accept any valid key of the team; ``incoming_message`` only finds the key's own sessions.
- An ended session answers 404 on ``incoming_message`` (OCS may instead carry on or start a new
  session; the bridge must treat both as "open a new session").
- Injected failures (``fail_next``) are taken before the request is handled. Only kind ``500`` and
  ``"timeout"`` let the message reach the bot: a 500 stores it with an error reply, a timeout
  answers (and stores) after ``timeout_sleep`` seconds. 502/503/504/429/"drop" store nothing.
- A session created with ``participant`` makes the next message in it answer 500 without storing it.
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
from typing import Any

from aiohttp import web

from fakes.ocs_records import (
    _GATEWAY,
    _INVALID,
    DJANGO_500,
    ERROR_REPLY,
    NOT_FOUND,
    Call,
    FailureKind,
    FakeMessage,
    FakeSession,
    ReplyFn,
    _default_reply,
    _Failure,
    _html,
    _now,
    experiment_json,
    session_json,
)
from fakes.server import serve_locally


class FakeOCS:
    """The fake server. Attributes may be changed while it runs."""

    def __init__(
        self,
        prefix: str = "",
        *,
        api_key: str = "test-key",
        read_only_key: str = "ro-key",
        experiment_id: str = "exp-1",
        versions: set[int] | None = None,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.api_key = api_key
        self.read_only_key = read_only_key
        self.other_keys: set[str] = set()
        """More read-write keys, each its own participant (for "session of another key")."""
        self.experiment_id = experiment_id
        self.other_experiments: set[str] = set()
        self.versions: set[int] = {1, 2} if versions is None else versions
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
        self.calls: list[Call] = []
        self.sessions: dict[str, FakeSession] = {}
        self._failures: list[_Failure] = []
        self._files: dict[str, tuple[str, Path | bytes]] = {}
        self._file_ids = itertools.count(1)
        self._inflight: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

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

    def messages(self, session_id: str) -> list[str]:
        """The user messages stored in a session, oldest first."""
        return [m.content for m in self.sessions[session_id].messages if m.role == "user"]

    def says(self, session_id: str, text: str, files: list[tuple[str, Path | bytes]] | None = None) -> None:
        """OCS adds an assistant message to the session by itself (a timeout trigger, a scheduled
        or triggered message): only the session's history (``GET /api/sessions/{id}/``) shows it."""
        attachments = [self._serve(name, content) for name, content in files or ()]
        files_json = [{"name": a["file_name"], "content_url": a["link"]} for a in attachments]
        self.sessions[session_id].messages.append(FakeMessage("assistant", text, _now(), files_json))

    def history_reads(self, session_id: str | None = None) -> int:
        """How many ``GET /api/sessions/{id}/`` requests arrived (for one session, or any)."""
        prefix = f"{self.prefix}/api/sessions/"
        return sum(
            1
            for c in self.calls
            if c.method == "GET"
            and c.path.startswith(prefix)
            and c.path.count("/") == prefix.count("/") + 1
            and (session_id is None or c.path == f"{prefix}{session_id}/")
        )

    def new_session(self, *, key: str | None = None, experiment: str | None = None) -> FakeSession:
        """Create a session directly (as if OCS had made it), owned by ``key``."""
        session = FakeSession(
            id=str(uuid.uuid4()),
            experiment=experiment or self.experiment_id,
            state={},
            owner_key=key or self.api_key,
            created_at=_now(),
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
        body: Any = None
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = _INVALID
        self.calls.append(
            Call(request.method, request.path, dict(request.headers), None if body is _INVALID else body)
        )
        if request.path.startswith(f"{self.prefix}/files/"):
            return await handler(request)
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            key = self._key_of(request)
            if not key:
                return self._unauthorized("Authentication credentials were not provided.")
            read_only = self._read_only(key)
            if read_only is None:
                return self._unauthorized("Invalid API key.")
            if read_only and request.method != "GET":
                detail = "You do not have permission to perform this action."
                return web.json_response({"detail": detail}, status=403)
            if body is _INVALID:
                return web.json_response({"detail": "JSON parse error."}, status=400)
            request["key"] = key
            request["json"] = body
            kind = self._take_failure(request.path)
            if kind == "timeout":
                await asyncio.sleep(self.timeout_sleep)
            elif kind == "drop":
                assert request.transport is not None
                request.transport.close()
                raise asyncio.CancelledError  # nothing more to say on a closed connection
            elif kind == 429:
                body = {"detail": "Request was throttled. Expected available in 1 second.", "available_in": 1}
                return web.json_response(body, status=429, headers={"Retry-After": "1"})
            elif kind in _GATEWAY:
                title = f"{kind} {_GATEWAY[kind]}"
                return _html(
                    kind, f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
                )
            elif kind == 500:
                request["fail_500"] = True
                if "incoming_message" not in request.path:
                    return _html(500, DJANGO_500)
            return await handler(request)
        finally:
            self._inflight.discard(task)

    @staticmethod
    def _unauthorized(detail: str) -> web.Response:
        return web.json_response(
            {"detail": detail}, status=401, headers={"WWW-Authenticate": 'Bearer realm="api"'}
        )

    def _known_experiment(self, experiment: object) -> bool:
        return experiment == self.experiment_id or experiment in self.other_experiments

    def _session_json(self, s: FakeSession, *, with_messages: bool) -> dict[str, Any]:
        return session_json(self.url, s, with_messages=with_messages)

    def _experiment_json(self, experiment: str) -> dict[str, Any]:
        return experiment_json(self.url, experiment)

    # --- session endpoints -----------------------------------------------------------------

    async def _get_experiment(self, request: web.Request) -> web.Response:
        experiment = request.match_info["id"]
        if not self._known_experiment(experiment):
            return web.json_response(NOT_FOUND, status=404)
        return web.json_response(self._experiment_json(experiment))

    async def _create_session(self, request: web.Request) -> web.Response:
        body = request["json"]
        experiment = body.get("experiment") if isinstance(body, dict) else None
        if experiment is None:
            return web.json_response({"experiment": ["This field is required."]}, status=400)
        if not self._known_experiment(experiment):
            error = f"Object with public_id={experiment} does not exist."
            return web.json_response({"experiment": [error]}, status=400)
        session = self.new_session(key=request["key"], experiment=experiment)
        session.state = dict(body.get("state") or {})
        if participant := body.get("participant"):
            session.participant = str(participant)
            session.fail_next_message = True
        return web.json_response(self._session_json(session, with_messages=False), status=201)

    def _team_session(self, request: web.Request) -> FakeSession:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            raise web.HTTPNotFound(text='{"detail": "Not found."}', content_type="application/json")
        return session

    async def _get_session(self, request: web.Request) -> web.Response:
        session = self._team_session(request)
        return web.json_response(self._session_json(session, with_messages=True))

    async def _end_session(self, request: web.Request) -> web.Response:
        self._team_session(request).ended = True
        return web.Response(status=200)

    async def _update_state(self, request: web.Request) -> web.Response:
        session = self._team_session(request)
        body = request["json"]
        if not isinstance(body, dict) or not isinstance(body.get("state"), dict):
            return web.json_response({"state": ["This field is required."]}, status=400)
        session.state = body["state"]
        return web.json_response({"success": True, "state": session.state})

    # --- the API channel -------------------------------------------------------------------

    async def _incoming(self, request: web.Request) -> web.Response:
        experiment = request.match_info["experiment"]
        if not self._known_experiment(experiment):
            return web.json_response(NOT_FOUND, status=404)
        version = request.match_info.get("version")
        if version is not None and int(version) not in self.versions:
            return _html(500, DJANGO_500)
        body = request["json"]
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return _html(500, DJANGO_500)
        key: str = request["key"]
        if session_id := body.get("session"):
            session = self.sessions.get(str(session_id))
            if (
                session is None
                or session.ended
                or session.experiment != experiment
                or session.owner_key != key
            ):
                return web.json_response(NOT_FOUND, status=404)
        else:
            session = self._resume(key, experiment)

        if session.fail_next_message:
            session.fail_next_message = False
            return _html(500, DJANGO_500)
        text: str = body["message"]
        session.messages.append(FakeMessage("user", text, _now()))
        if request.get("fail_500"):
            session.messages.append(FakeMessage("assistant", ERROR_REPLY, _now()))
            return _html(500, DJANGO_500)
        self.answering += 1
        self.max_answering = max(self.max_answering, self.answering)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            result = self.reply(text, session)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            session.messages.append(FakeMessage("assistant", ERROR_REPLY, _now()))
            return _html(500, DJANGO_500)
        finally:
            self.answering -= 1
        response, files = (result, []) if isinstance(result, str) else result
        attachments = [self._serve(name, content) for name, content in files]
        session.messages.append(
            FakeMessage(
                "assistant",
                response,
                _now(),
                [{"name": a["file_name"], "content_url": a["link"]} for a in attachments],
            )
        )
        return web.json_response({"response": response, "attachments": attachments})

    def _resume(self, key: str, experiment: str) -> FakeSession:
        """OCS without ``session``: the key owner's newest open session, or a new one."""
        for session in reversed(self.sessions.values()):
            if session.owner_key == key and session.experiment == experiment and not session.ended:
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
