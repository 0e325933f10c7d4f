"""The OCS Chat API served by the bridge, so the official widget works unchanged, and the demo page.

``install(app)`` is the plugin the core runs while building the application.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bridge.body import json_object, query_count
from bridge.channel import ChatHost
from bridge.errors import BadRequest, Forbidden, NotFound
from bridge.files import FileResponse, download_headers, under
from bridge.model import Conversation, InboundMessage, Kind, Media, Received
from bridge.typedefs import CHAT_HOST

from . import uploads
from .channel import REMOTE_ID, WebChannel, web_channels
from .demo import demo_page, install_static
from .digest import token_digest
from .security import (
    RateLimiter,
    check_embed_key,
    check_origin,
    check_session_token,
    client_address,
    cors_middleware,
    new_session_id,
    new_session_token,
    token_required,
)
from .wire import assistant_message, history_message, iso, parse_since, progress_message

LIMITER: web.AppKey[RateLimiter] = web.AppKey("web_rate_limiter", RateLimiter)
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
POLL_LIMIT = 50  # messages a history poll returns unless it asks for fewer (OCS's default)


def install(app: web.Application) -> None:
    """Add the Chat API, its CORS handling, the demo page and the widget's files."""
    app[LIMITER] = RateLimiter()
    app.middlewares.append(cors_middleware(lambda: web_channels(app)))
    app.router.add_post("/api/chat/start/", start)
    app.router.add_post("/api/chat/{session_id}/message/", message)
    app.router.add_get("/api/chat/{session_id}/poll/", poll_messages)
    app.router.add_get("/api/chat/{session_id}/{task_id}/poll/", poll_task)
    app.router.add_post("/api/chat/{session_id}/upload/", upload)
    app.router.add_get("/uploads/{file_id}/{name}", download)
    app.router.add_get("/", demo_page)
    install_static(app)


@dataclass(frozen=True)
class Session:
    channel: WebChannel
    conversation: Conversation


# handlers -------------------------------------------------------------------------------------------
async def start(request: web.Request) -> web.Response:
    body = await json_object(request)
    chatbot_id = body.get("chatbot_id")
    if not isinstance(chatbot_id, str) or not chatbot_id:
        raise BadRequest("'chatbot_id' is required")
    channel = next((c for c in web_channels(request.app) if c.chatbot_id == chatbot_id), None)
    if channel is None:
        raise NotFound("unknown chatbot")
    check_origin(channel, request)
    check_embed_key(channel, request)
    _limit_address(request, channel)
    session_id, token = new_session_id(), new_session_token()
    required = token_required(channel.options.auth, request)
    opened = channel.opened(session_id, body, token_digest(token), required, datetime.now(UTC))
    host = request.app[CHAT_HOST]
    remote_id = opened.state[REMOTE_ID]
    # The widget's "new chat": the participant's earlier chats end their bot sessions (in order,
    # after anything they still have pending), in the same transaction as the new one opens.
    previous = await host.store.conversations_with(channel.name, REMOTE_ID, remote_id) if remote_id else []
    ends = [
        InboundMessage(channel.name, f"end:{c.person.key}", c.person, kind=Kind.END)
        for c in previous
        if c.session_id
    ]
    await host.receive(channel.name, Received(messages=tuple(ends), events=(opened,)))
    name = opened.person.name
    return web.json_response(
        {
            "session_id": session_id,
            "session_token": token,
            "chatbot": {"id": channel.chatbot_id, "name": await _chatbot_name(host, channel)},
            # the identifier the bridge knows the person by (its trigger_bot and participants API)
            "participant": {"identifier": opened.person.key, "remote_id": remote_id, "name": name},
        },
        status=201,
    )


async def _chatbot_name(host: ChatHost, channel: WebChannel) -> str:
    """The chatbot's name as OCS shows it (its experiment's), else the bot's name in the settings."""
    bot = host.bots.get(channel.bot)
    return (await bot.display_name() if bot is not None else None) or channel.bot


async def message(request: web.Request) -> web.Response:
    session = await _session(request)
    channel, conversation = session.channel, session.conversation
    body = await json_object(request)
    await _check_active(request, conversation)
    inbound = channel.message(conversation, body, f"{conversation.person.key}:{secrets.token_urlsafe(12)}")
    _limit_address(request, channel)
    request.app[LIMITER].hit(f"session:{conversation.id}", channel.options.session_rate, "messages")
    if body.get("attachment_ids"):
        media = _attachments(channel, conversation, body["attachment_ids"])
        inbound = dataclasses.replace(inbound, media=media)
    accepted = (await request.app[CHAT_HOST].receive(channel.name, Received(messages=(inbound,))))[0]
    return web.json_response({"task_id": accepted.public_id, "status": "processing"}, status=202)


async def poll_task(request: web.Request) -> web.Response:
    session = await _session(request)
    store = request.app[CHAT_HOST].store
    stored = await store.message(request.match_info["task_id"])
    if stored is None or stored.conversation_id != session.conversation.id:
        raise NotFound("unknown task")
    parts = await store.parts_of(stored.id)
    if stored.status == "pending" or any(p.status == "pending" for p in parts):  # not all sent yet
        progress = progress_message(session.channel.texts.progress, stored.received_at, datetime.now(UTC))
        return web.json_response({"status": "processing", "message": progress})
    links = session.channel.options.attachment_links
    reply = assistant_message(parts, links=links) if parts else _empty_message()
    if stored.status == "dead":
        error = reply["content"] or session.channel.texts.apology
        return web.json_response({"status": "error", "error": error, "message": reply if parts else None})
    return web.json_response({"status": "complete", "message": reply})


async def poll_messages(request: web.Request) -> web.Response:
    """The whole chat, both roles, oldest first, a page at a time (``since`` exclusive, ``limit``),
    as it stood when the poll came in."""
    asked = datetime.now(UTC)
    session = await _session(request)
    since = parse_since(request.query.get("since"))
    limit = _limit(request.query.get("limit"))
    store = request.app[CHAT_HOST].store
    items = await store.transcript(session.conversation.id, since, limit + 1, asked)
    links = session.channel.options.attachment_links
    messages = [history_message(item, links=links) for item in items[:limit]]
    status = "ended" if await request.app[CHAT_HOST].store.ended(session.conversation.id) else "active"
    return web.json_response({"messages": messages, "has_more": len(items) > limit, "session_status": status})


async def upload(request: web.Request) -> web.Response:
    session = await _session(request)
    options = session.channel.options
    if not options.uploads_enabled:  # 400, as OCS refuses files: the widget drops a session on a 403
        raise BadRequest("file uploads are not enabled for this chat")
    await _check_active(request, session.conversation)
    _limit_address(request, session.channel)
    root = session.channel.uploads_dir
    max_body = request.app[CHAT_HOST].settings.max_body_bytes  # the app's client_max_size
    files = await uploads.receive(
        request, root, session.conversation.person.key, options.max_upload_bytes, max_body
    )
    return web.json_response({"files": [f.public() for f in files]}, status=201)


async def download(request: web.Request) -> web.FileResponse:
    for channel in web_channels(request.app):
        if not channel.options.uploads_enabled:
            continue
        root = channel.uploads_dir
        try:
            found = uploads.find(root, request.match_info["file_id"])
        except NotFound:
            continue
        if found.name == request.match_info["name"]:
            headers = download_headers(found.name, found.content_type)
            return FileResponse(under(root, f"{found.id}/{found.name}"), headers=headers)
    raise NotFound("unknown file")


# helpers --------------------------------------------------------------------------------------------
async def _session(request: web.Request) -> Session:
    """The conversation behind ``{session_id}``, after the origin, embed key and token checks.

    An unknown session is 403, as OCS answers on every session route (its permission check finds
    no session): the widget (0.9.0 on) then starts a new chat, e.g. after the person was erased."""
    session_id = request.match_info["session_id"]
    if _SESSION_ID.match(session_id):
        store = request.app[CHAT_HOST].store
        for channel in web_channels(request.app):
            conversation = await store.conversation(channel.name, session_id)
            if conversation is not None:
                check_origin(channel, request)
                check_embed_key(channel, request)
                lifetime = timedelta(days=channel.options.session_token_days)
                check_session_token(request, conversation.state, lifetime, datetime.now(UTC))
                return Session(channel, conversation)
    raise Forbidden("unknown session")


async def _check_active(request: web.Request, conversation: Conversation) -> None:
    """A session the widget's "new chat" left takes nothing more, as in OCS. One the bot's side
    closed shows as ended, but a message still gets through and opens a new session (the widget
    0.6.0 has no "ended" state, and a person who writes again wants an answer)."""
    if await request.app[CHAT_HOST].store.ended(conversation.id) == "left":
        raise BadRequest("Session has ended")


def _limit(value: str | None) -> int:
    if value is None:
        return POLL_LIMIT
    limit = query_count(value, 1000)
    if limit is None:
        raise BadRequest("'limit' must be a number from 1 to 1000")
    return limit


def _limit_address(request: web.Request, channel: WebChannel) -> None:
    address = client_address(request, channel.options.trust_forwarded_for)
    request.app[LIMITER].hit(f"ip:{address}", channel.options.ip_rate, "requests from your address")


def _attachments(channel: WebChannel, conversation: Conversation, ids: object) -> tuple[Media, ...]:
    """The person's own uploads the message names (fetched from disk later, in the worker)."""
    if not channel.options.uploads_enabled:
        raise BadRequest("file uploads are not enabled for this chat")
    files = uploads.owned(channel.uploads_dir, ids, conversation.person.key)
    return tuple(Media("file", f.id, f.name, f.content_type, f.size) for f in files)


def _empty_message() -> dict[str, Any]:
    return {"created_at": iso(datetime.now(UTC)), "role": "assistant", "content": "", "attachments": []}
