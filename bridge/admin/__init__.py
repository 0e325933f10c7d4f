"""The operator's page, ``/admin`` (only when ``ADMIN_API_KEY`` is set): conversations and their
transcripts, dead letters (retried with a button), per-channel counts, one person's data exported
or erased. Server-rendered HTML, no script; every POST checks the session and its CSRF token."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web

from bridge import body
from bridge.admin import auth, html
from bridge.admin.people import erase_person
from bridge.core import Core
from bridge.settings import Settings
from bridge.store import admin as records
from bridge.store.letters import Revived
from bridge.typedefs import CORE

log = structlog.get_logger("bridge.admin")
Page = Callable[[web.Request, Core, auth.Session], Awaitable[web.StreamResponse]]
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def install(app: web.Application, settings: Settings) -> None:
    """Add the routes, only when a key is set (otherwise ``/admin`` is a 404 like any unknown path)."""
    if settings.admin_api_key is None:
        return
    app.router.add_get("/admin", _page(overview))
    app.router.add_post("/admin/login", login)
    app.router.add_post("/admin/logout", _action(logout))
    app.router.add_get("/admin/conversations/{id:\\d+}", _page(conversation))
    app.router.add_get("/admin/conversations/{id:\\d+}/export", _page(export))
    app.router.add_post("/admin/conversations/{id:\\d+}/erase", _action(erase))
    app.router.add_post("/admin/dead-letters/{ref}/retry", _action(retry))


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", headers=HEADERS)


def _page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A page for a logged-in operator; anyone else gets the login form (401)."""

    async def page(request: web.Request) -> web.StreamResponse:
        core = request.app[CORE]
        current = auth.session(request, core.settings)
        if current is None:
            return _html(html.login(), status=401)
        return await handler(request, core, current)

    return page


def _action(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A form's POST: a logged-in operator's, with the session's CSRF token; otherwise 403."""

    async def action(request: web.Request) -> web.StreamResponse:
        core = request.app[CORE]
        current = auth.session(request, core.settings)
        if current is None:
            return _html(html.login("Log in first."), status=403)
        form = await body.form(request)
        if not auth.csrf_ok(current, form.get(auth.CSRF_FIELD)):
            return _html(html.page("Refused", "<p>The form has expired: go back and reload.</p>"), 403)
        return await handler(request, core, current)

    return action


async def login(request: web.Request) -> web.StreamResponse:
    core = request.app[CORE]
    given = (await body.form(request)).get("key")
    if not isinstance(given, str) or not auth.key_matches(core.settings, given):
        log.warning("admin login refused", client=request.remote)
        return _html(html.login("That is not the admin key."), status=403)
    log.info("admin logged in", client=request.remote)
    response = web.HTTPSeeOther("/admin", headers=HEADERS)
    auth.log_in(response, core.settings)
    raise response


async def logout(request: web.Request, core: Core, current: auth.Session) -> web.StreamResponse:
    response = web.HTTPSeeOther("/admin", headers=HEADERS)
    auth.log_out(response)
    raise response


async def overview(request: web.Request, core: Core, current: auth.Session) -> web.StreamResponse:
    counts = await records.counts(core.store)
    letters = await records.dead_letters(core.store)
    conversations = await records.conversations(core.store)
    notice = request.query.get("notice")
    return _html(html.overview(counts, letters, conversations, current.csrf, notice))


async def conversation(request: web.Request, core: Core, current: auth.Session) -> web.StreamResponse:
    conversation_id = int(request.match_info["id"])
    found = await records.conversation(core.store, conversation_id)
    if found is None:
        return _html(html.page("Not found", "<p>There is no such conversation.</p>", csrf=current.csrf), 404)
    entries = await records.transcript(core.store, conversation_id)
    return _html(html.transcript(found, entries, current.csrf))


async def export(request: web.Request, core: Core, current: auth.Session) -> web.StreamResponse:
    conversation_id = int(request.match_info["id"])
    data = await records.export(core.store, conversation_id)
    if data is None:
        return _html(html.page("Not found", "<p>There is no such conversation.</p>", csrf=current.csrf), 404)
    return web.Response(
        text=json.dumps(data, indent=2, ensure_ascii=False),
        content_type="application/json",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="person-{conversation_id}.json"'},
    )


async def erase(request: web.Request, core: Core, current: auth.Session) -> web.StreamResponse:
    data_dir = Path(core.settings.data_dir)
    erased = await erase_person(core.store, core.bots, core.channels, data_dir, int(request.match_info["id"]))
    notice = "erased" if erased is None or erased.session_ended else "erased-session-kept"
    raise web.HTTPSeeOther(f"/admin?notice={notice}", headers=HEADERS)


async def retry(request: web.Request, core: Core, current: auth.Session) -> web.StreamResponse:
    revived = await core.store.revive(request.match_info["ref"])
    if revived is Revived.QUEUED:
        core.wake()
    notice = {Revived.QUEUED: "retried", Revived.MISSING: "missing", Revived.EXPIRED: "expired"}[revived]
    raise web.HTTPSeeOther(f"/admin?notice={notice}", headers=HEADERS)
