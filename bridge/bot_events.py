"""``POST /bot-events/{bot}``: webhook events from a bot's side, for any backend that sends them.

The bot verifies the request and parses it into session events (``Bot.events``); a bot that sends
none answers 404. Events are hints, safe twice or out of order: the conversations of the session
they name are marked handed off or closed (typed columns, one write for the request), and their
history is read at once (an agent's reply is read from there, delivered once by its id).
"""

from __future__ import annotations

import structlog
from aiohttp import web

from bridge.bots import AgentReplyDue, Closed, HandedOff
from bridge.errors import Forbidden, NotFound
from bridge.typedefs import CORE

log = structlog.get_logger("bridge.bot_events")


async def bot_events(request: web.Request) -> web.Response:
    core = request.app[CORE]
    name = request.match_info["bot"]
    bot = core.bots.get(name)
    if bot is None:
        raise NotFound(f"no bot named {name!r}")
    try:
        events = await bot.events(request)
    except Forbidden:
        log.warning("bot event rejected", bot=name, client=request.remote)
        raise
    if events is None:
        raise NotFound(f"bot {name!r} sends no events (or they are off: set its webhook secret)")
    if not events:
        log.info("bot event ignored", bot=name)
        return web.json_response({"ok": True})
    channels = [channel.name for channel in core.channels.values() if channel.bot == name]
    handed_off = [e.session_id for e in events if isinstance(e, HandedOff | AgentReplyDue)]
    closed = [e.session_id for e in events if isinstance(e, Closed)]
    for conversation_id in await core.store.mark_sessions(channels, handed_off=handed_off, closed=closed):
        core.read_history_soon(conversation_id)
        log.info(
            "bot event", bot=name, conversation=conversation_id, events=[type(e).__name__ for e in events]
        )
    return web.json_response({"ok": True})
