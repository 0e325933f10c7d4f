"""The bridge's own API: proactive messages (``POST /api/trigger_bot``, seed TriggerBotMessageRequest)."""

from __future__ import annotations

from aiohttp import web

from bridge.body import json_object
from bridge.channel import Channel
from bridge.errors import BadRequest, Forbidden, NotFound, Unauthorized
from bridge.model import Person
from bridge.secrets import matches
from bridge.split import split_text
from bridge.typedefs import CORE


async def trigger_bot(request: web.Request) -> web.Response:
    """Deliver ``message_text`` as is to a person on any channel (OCS cannot reach bridged people)."""
    core = request.app[CORE]
    key = core.settings.bridge_api_key
    if key is None:
        raise NotFound("the bridge API is off (set BRIDGE_API_KEY)")
    given = request.headers.get("X-api-key") or _bearer(request.headers.get("Authorization", ""))
    if not given:
        raise Unauthorized("missing X-api-key", headers={"WWW-Authenticate": "X-api-key"})
    if not matches(given, key.get_secret_value()):
        raise Forbidden("invalid API key")
    body = await json_object(request)
    identifier, platform = body.get("identifier"), body.get("platform")
    if not isinstance(identifier, str) or not identifier:
        raise BadRequest("identifier: required")
    if not isinstance(platform, str) or not platform:
        raise BadRequest("platform: required")
    message_text = body.get("message_text")
    if body.get("prompt_text") is not None:
        raise BadRequest("prompt_text is not supported by the bridge; send message_text")
    if not isinstance(message_text, str) or not message_text.strip():
        raise BadRequest("message_text: required")
    channel = _channel(core.channels, platform)
    conversation = await core.store.conversation(channel.name, identifier)
    if conversation is None:
        if not channel.capabilities.reach_new or len(identifier) > 255:
            raise NotFound(f"no conversation with {identifier!r} on {channel.name!r}")
        conversation = await core.store.open_conversation(
            channel.name, Person(key=identifier, address=identifier, platform=channel.kind)
        )
    caps = channel.capabilities
    await core.store.enqueue_parts(conversation.id, split_text(message_text, caps.max_text, caps.length))
    core.wake()
    return web.json_response(
        {"session_id": conversation.session_id or "", "channel": channel.name, "url": "", "team": None}
    )


def _channel(channels: dict[str, Channel], platform: str) -> Channel:
    """A channel by name, or the only channel of that kind (``telegram``, ``twilio``, ``web``)."""
    if platform in channels:
        return channels[platform]
    of_kind = [c for c in channels.values() if c.kind == platform]
    if len(of_kind) == 1:
        return of_kind[0]
    raise NotFound(f"unknown channel {platform!r}")


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
