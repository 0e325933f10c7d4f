"""The bridge's own API (``BRIDGE_API_KEY``): ``POST /api/trigger_bot``, the whole seed
TriggerBotMessageRequest, mirroring what OCS's own trigger_bot does for the people OCS cannot reach."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from bridge.body import json_object
from bridge.bots import BotError, SessionGone, SessionInfo, StateChange
from bridge.core import Core
from bridge.errors import ApiError, BadRequest, Forbidden, NotFound, Unauthorized
from bridge.logs import mask
from bridge.model import Conversation
from bridge.proactive import fields
from bridge.proactive.messages import deliver, enqueue, prompt
from bridge.proactive.route import Route, conversation_of, identifier_on, route
from bridge.secrets import matches
from bridge.store import people
from bridge.typedefs import CORE

log = structlog.get_logger("bridge.api")

IDEMPOTENCY_KEY = "Idempotency-Key"
PAGE_CONTEXT = "page_context"
PARTICIPANT_DATA = "participant_data"


def authorize(request: web.Request) -> Core:
    """``X-api-key`` (or ``Authorization: Bearer``) must be ``BRIDGE_API_KEY``; the core."""
    core = request.app[CORE]
    key = core.settings.bridge_api_key
    if key is None:
        raise NotFound("the bridge API is off (set BRIDGE_API_KEY)")
    given = request.headers.get("X-api-key") or _bearer(request.headers.get("Authorization", ""))
    if not given:
        raise Unauthorized("missing X-api-key", headers={"WWW-Authenticate": "X-api-key"})
    if not matches(given, key.get_secret_value()):
        raise Forbidden("invalid API key")
    return core


@dataclass(frozen=True, slots=True)
class Trigger:
    identifier: str
    platform: str
    experiment: str
    message_text: str | None
    prompt_text: str | None
    start_new_session: bool
    session_data: dict[str, Any]
    participant_data: dict[str, Any] | None
    page_context: dict[str, Any] | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Trigger:
        identifier = fields.required_text(body, "identifier", limit=255)
        platform = fields.required_text(body, "platform")
        experiment = fields.required_text(body, "experiment")
        prompt_text, message_text = fields.text(body, "prompt_text"), fields.text(body, "message_text")
        if prompt_text is not None and message_text is not None:
            raise BadRequest("Provide either 'prompt_text' or 'message_text', not both.")
        if prompt_text is None and message_text is None:
            raise BadRequest("Either 'prompt_text' or 'message_text' must be provided.")
        session_data = fields.mapping(body, "session_data") or {}
        if PAGE_CONTEXT in session_data:
            raise fields.invalid(
                "session_data",
                "The 'page_context' key cannot be set directly in session_data; use page_context instead.",
            )
        return cls(
            identifier=identifier_on(platform, identifier),
            platform=platform,
            experiment=experiment,
            message_text=message_text,
            prompt_text=prompt_text,
            start_new_session=fields.boolean(body, "start_new_session"),
            session_data=session_data,
            participant_data=fields.mapping(body, PARTICIPANT_DATA),
            page_context=fields.mapping(body, PAGE_CONTEXT),
        )


async def trigger_bot(request: web.Request) -> web.Response:
    """Answer at once with the person's session; the message follows, in order, through the worker.

    ``message_text`` is delivered as is; ``prompt_text`` is sent to the bot in the person's session
    and its answer delivered. A retried call with the same ``Idempotency-Key`` delivers nothing again.
    """
    core = authorize(request)
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is not None and not 0 < len(key) <= 200:
        raise BadRequest(f"{IDEMPOTENCY_KEY}: 1 to 200 characters")
    trigger = Trigger.parse(await json_object(request))
    target = route(core, trigger.platform, trigger.experiment)
    channel = target.channel
    conversation = await conversation_of(core.store, channel, trigger.identifier)
    if await people.is_blocked(core.store, conversation.id):
        raise BadRequest("this person blocked the bot or opted out: nothing can be sent to them")
    platform_id = f"trigger:{key}" if key else f"trigger:{secrets.token_urlsafe(16)}"
    retried = key is not None and await people.stored(core.store, channel.name, platform_id)
    try:
        if retried:  # the first call did everything: answer as it did
            session_id, info = await _session(core, target, conversation, None)
        else:
            session_id, info = await _prepare(core, target, conversation, trigger)
    except BotError as exc:
        raise ApiError(f"the chatbot could not be reached: {exc.reason}", status=502) from None
    if not retried:
        person = conversation.person
        message = (
            deliver(channel.name, person, platform_id, trigger.message_text)
            if trigger.message_text is not None
            else prompt(channel.name, person, platform_id, trigger.prompt_text or "")
        )
        accepted = await enqueue(core, message)
        log.info(
            "proactive message accepted",
            message_id=accepted.public_id,
            channel=channel.name,
            kind=message.kind.value,
            person=mask(person.key),
            duplicate=accepted.duplicate,
        )
    return web.json_response(
        {"session_id": session_id, "url": info.url, "team": info.team, "channel": trigger.platform}
    )


async def _prepare(
    core: Core, target: Route, conversation: Conversation, trigger: Trigger
) -> tuple[str, SessionInfo]:
    """A new session if asked for, and the request's data merged into its state."""
    if trigger.start_new_session and conversation.session_id:
        await target.bot.end_session(conversation.session_id)
        await core.store.set_session(conversation.id, None)
        conversation = dataclasses.replace(conversation, session_id=None)
    participant: dict[str, Any] | None
    if trigger.participant_data is not None:
        participant = await core.store.merge_data(conversation.id, trigger.participant_data)
    else:  # what the person has goes into a new session's state too
        participant = await people.data_of(core.store, conversation.id)
    change = state_change(trigger.session_data, participant, trigger.page_context)
    return await _session(core, target, conversation, change)


async def _session(
    core: Core, target: Route, conversation: Conversation, change: StateChange | None
) -> tuple[str, SessionInfo]:
    """The person's bot session (opened if they have none, or if the bot lost it), changed."""
    session_id = conversation.session_id
    for _ in range(2):
        if session_id is None:
            session_id = await target.bot.open_session(conversation)
            await core.store.set_session(conversation.id, session_id)
        try:
            return session_id, await target.bot.update_session(session_id, change)
        except SessionGone:
            session_id = None
    raise BotError("the chatbot lost the new session at once")


def state_change(
    session_data: dict[str, Any], participant: dict[str, Any] | None, page_context: dict[str, Any] | None
) -> StateChange | None:
    """OCS's merge: ``{**state, **session_data}``, the person's data under ``participant_data`` and
    the page context under ``page_context``."""
    if not session_data and participant is None and page_context is None:
        return None

    def change(state: dict[str, Any]) -> dict[str, Any]:
        state = {**state, **session_data}
        for name, values in ((PARTICIPANT_DATA, participant), (PAGE_CONTEXT, page_context)):
            if values is not None:
                old = state.get(name)
                state[name] = {**(old if isinstance(old, dict) else {}), **values}
        return state

    return change


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
