"""``POST /bot-events/{bot}``: webhook events from a bot backend (open.cx).

open.cx promises no signature, so the bridge checks a shared secret of its own
(``OPENCX_WEBHOOK_SECRET``, as ``?secret=`` or ``X-Webhook-Secret``) in constant time. Events are
hints, safe twice or out of order: ``conversation.agent_response`` has the session's history read
at once (the reply itself is read from there, delivered once by its id); it and
``conversation.handoff_to_human`` mark the session handed off (so its history is followed), and
``conversation.closed`` marks it closed (a last read, then the next message opens a new session).
Other events are acknowledged and ignored.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from aiohttp import web

from bridge.core import Core
from bridge.errors import BadRequest, Forbidden, NotFound, Unauthorized
from bridge.secrets import matches
from bridge.store.handoff import CLOSED, HANDOFF, mark, read_soon, with_session
from bridge.typedefs import CORE

log = structlog.get_logger("bridge.bot_events")

SECRET_HEADER = "X-Webhook-Secret"
MARKS = {
    "conversation.agent_response": HANDOFF,  # (a human agent has it, however it came to them)
    "conversation.handoff_to_human": HANDOFF,
    "conversation.closed": CLOSED,
}


async def bot_events(request: web.Request) -> web.Response:
    core = request.app[CORE]
    name = request.match_info["bot"]
    bot = core.settings.bots.get(name)
    if bot is None or bot.backend != "opencx":
        raise NotFound(f"no open.cx bot named {name!r}")
    if bot.webhook_secret is None:
        raise NotFound(f"events are off for bot {name!r} (set its webhook secret)")
    given = request.query.get("secret") or request.headers.get(SECRET_HEADER)
    if not given:
        raise Unauthorized(f"the secret is missing (?secret= or {SECRET_HEADER})")
    if not matches(given, bot.webhook_secret.get_secret_value()):
        log.warning("bot event rejected", bot=name, client=request.remote)
        raise Forbidden("wrong secret")
    event, session_id = _parse(await request.read())
    if event in MARKS and session_id:
        await _apply(core, name, event, session_id)
    else:
        log.info("bot event ignored", bot=name, bot_event=event[:100])
    return web.json_response({"ok": True})


def _parse(raw: bytes) -> tuple[str, str]:
    """The event's name and its session (``data.conversation_id``), or 400."""
    try:
        body: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("malformed JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        raise BadRequest("an event is a JSON object with an 'event' name")
    data = body.get("data")
    session_id = data.get("conversation_id") if isinstance(data, dict) else None
    if not isinstance(session_id, str) or len(session_id) > 255 or not session_id.isprintable():
        session_id = ""  # nothing the bridge could have opened
    return body["event"], session_id


async def _apply(core: Core, bot: str, event: str, session_id: str) -> None:
    channels = [channel.name for channel in core.channels.values() if channel.bot == bot]
    for conversation_id in await with_session(core.store, channels, session_id):
        await mark(core.store, conversation_id, MARKS[event], session_id)
        await read_soon(core.store, conversation_id)
        core.read_history_soon(conversation_id)
        log.info("bot event", bot_event=event, conversation=conversation_id)
