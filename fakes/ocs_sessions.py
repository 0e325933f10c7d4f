"""The fake OCS's session endpoints (``/api/sessions/``, ``/api/experiments/``), as recorded."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fakes.ocs_records import (
    BODY,
    KEY,
    NO_EXPERIMENT,
    NO_SESSION,
    NOT_FOUND,
    Call,
    FakeSession,
    experiment_json,
    is_uuid,
    session_json,
)


class SessionEndpoints:
    """What ``FakeOCS`` answers on its session endpoints."""

    url: str
    prefix: str
    versions: set[int]
    sessions: dict[str, FakeSession]
    calls: list[Call]

    def _known_experiment(self, experiment: object) -> bool:
        raise NotImplementedError

    def new_session(self, *, key: str | None = None, experiment: str | None = None) -> FakeSession:
        raise NotImplementedError

    def history_reads(self, session_id: str | None = None) -> int:
        """How many ``GET /api/sessions/{id}/`` requests arrived (for one session, or any)."""
        return len(self.reads(session_id))

    def reads(self, session_id: str | None = None) -> list[Call]:
        """The ``GET /api/sessions/{id}/`` requests (for one session, or any)."""
        prefix = f"{self.prefix}/api/sessions/"
        return [
            c
            for c in self.calls
            if c.method == "GET"
            and c.path.startswith(prefix)
            and c.path.count("/") == prefix.count("/") + 1
            and (session_id is None or c.path == f"{prefix}{session_id}/")
        ]

    def _session_json(self, s: FakeSession, *, with_messages: bool) -> dict[str, Any]:
        return session_json(self.url, s, self.versions, with_messages=with_messages)

    async def _get_experiment(self, request: web.Request) -> web.Response:
        experiment = request.match_info["id"]
        if not is_uuid(experiment):
            return web.json_response(NOT_FOUND, status=404)
        if not self._known_experiment(experiment):
            return web.json_response(NO_EXPERIMENT, status=404)
        return web.json_response(experiment_json(self.url, experiment, self.versions))

    async def _create_session(self, request: web.Request) -> web.Response:
        body = request[BODY]
        experiment = body.get("experiment") if isinstance(body, dict) else None
        if experiment is None:
            return web.json_response({"experiment": ["This field is required."]}, status=400)
        if not is_uuid(experiment):
            return web.json_response(
                {"experiment": [f"\u201c{experiment}\u201d is not a valid UUID."]}, status=400
            )
        if not self._known_experiment(experiment):
            error = f"Object with public_id={experiment} does not exist."
            return web.json_response({"experiment": [error]}, status=400)
        session = self.new_session(key=request[KEY], experiment=experiment)
        session.state = dict(body.get("state") or {})
        if participant := body.get("participant"):
            session.impersonates = str(participant) != session.owner
            session.owner = str(participant)
        answer = self._session_json(session, with_messages=False)
        return web.json_response(answer, status=201, headers={"Location": answer["url"]})

    def _session(self, request: web.Request) -> FakeSession | None:
        return self.sessions.get(request.match_info["id"])

    async def _get_session(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session is None:
            return web.json_response(NO_SESSION, status=404)
        return web.json_response(self._session_json(session, with_messages=True))

    async def _end_session(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session is None:
            return web.json_response({"error": "Session not found:{id}"}, status=404)
        session.status = "pending-review"
        return web.Response(status=200)

    async def _update_state(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session is None:
            error = f"Session not found: {request.match_info['id']}"
            return web.json_response({"error": error}, status=404)
        body = request[BODY]
        if not isinstance(body, dict) or not isinstance(body.get("state"), dict) or not body["state"]:
            return web.json_response({"error": "Missing 'state' in request"}, status=400)
        session.state = body["state"]
        return web.json_response({"success": True, "state": session.state})
