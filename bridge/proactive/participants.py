"""``GET/POST /api/participants`` (seed ``003_…``): the people the bridge serves, their data per
chatbot and their schedules. OCS cannot keep these for API-channel people (one key is one OCS
participant), so the bridge keeps them, and puts the data into the person's session state under
``participant_data``."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import structlog
from aiohttp import web

from bridge.api import authorize, state_change
from bridge.body import json_object, query_count
from bridge.bots import BotError, SessionGone
from bridge.core import Core
from bridge.errors import BadRequest
from bridge.model import Conversation
from bridge.proactive import fields
from bridge.proactive.route import Route, bots_of, chatbot_id, conversation_of, identifier_on, route
from bridge.proactive.schedule import fire_due
from bridge.store import people
from bridge.store.people import Participant, ScheduleChange, UnknownSchedule
from bridge.store.tables import utcnow

log = structlog.get_logger("bridge.participants")

PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000


def install(app: web.Application) -> None:
    for path in ("/api/participants", "/api/participants/"):
        app.router.add_get(path, list_participants)
        app.router.add_post(path, update_participant)


async def list_participants(request: web.Request) -> web.Response:
    """``PaginatedParticipantDetailList``; filters ``platform``, ``identifier``, ``chatbot``."""
    core = authorize(request)
    query = request.query
    size = _page_size(query.get("page_size"))
    chatbot = fields.query(query, "chatbot")
    channels = [c.name for c in core.channels.values() if chatbot in (None, chatbot_id(core, c.bot))]
    found = await people.participants(
        core.store,
        channels=channels,
        platform=fields.query(query, "platform"),
        identifier=fields.query(query, "identifier"),
        after=_after(query.get("cursor")),
        limit=size + 1,
    )
    page = found[:size]
    following = None
    if len(found) > size:
        params = {**query, "cursor": _cursor(page[-1].conversation.id), "page_size": str(size)}
        following = f"{core.settings.base_url}{request.path}?{urlencode(params)}"
    results = [detail(core, p) for p in page]
    return web.json_response({"next": following, "previous": None, "results": results})


def detail(core: Core, participant: Participant) -> dict[str, Any]:
    """A ``ParticipantDetail`` (with each chatbot's schedules beside its data)."""
    conversation = participant.conversation
    channel = core.channels.get(conversation.channel)
    bot = channel.bot if channel is not None else ""
    return {
        "id": str(conversation.id),
        "identifier": conversation.person.key,
        "name": conversation.person.name,
        "platform": conversation.person.platform or (channel.kind if channel else ""),
        "remote_id": str(conversation.state.get("participant_remote_id") or ""),
        "data": [
            {
                "chatbot": bot,
                "chatbot_id": chatbot_id(core, bot),
                "data": participant.data,
                "schedules": [
                    {"id": s.id, "name": s.name, "prompt": s.prompt, "date": s.due_at.isoformat()}
                    for s in participant.schedules
                ],
            }
        ],
    }


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``ParticipantExperimentData``, checked."""

    experiment: str
    data: dict[str, Any] | None
    schedules: list[ScheduleChange]


async def update_participant(request: web.Request) -> web.Response:
    """``ParticipantDataUpdateRequest``: merge the data, change the schedules; 200, no body."""
    core = authorize(request)
    body = await json_object(request)
    identifier = fields.required_text(body, "identifier", limit=255)
    name = fields.text(body, "name", limit=255)
    platform = fields.text(body, "platform")
    if platform is not None:
        identifier = identifier_on(platform, identifier)
    entries = [_entry(item) for item in fields.items(body, "data", required=True)]
    targets = [await _route(core, platform, identifier, entry.experiment) for entry in entries]
    for entry, target in zip(entries, targets, strict=True):
        conversation = await conversation_of(core.store, target.channel, identifier)
        if name is not None and name != conversation.person.name:
            person = dataclasses.replace(conversation.person, name=name)
            conversation = await core.store.open_conversation(target.channel.name, person)
        try:
            await core.store.save_schedules(conversation.id, entry.schedules)
        except UnknownSchedule as exc:
            raise fields.invalid("schedules", f"no schedule {exc.args[0]!r} for this participant") from None
        if entry.data is not None:
            merged = await core.store.merge_data(conversation.id, entry.data)
            await _into_session(target, conversation, merged)
    if any(s.due_at is not None and s.due_at <= utcnow() for e in entries for s in e.schedules):
        await fire_due(core)  # a date in the past fires at once
    return web.Response(status=200)


def _entry(item: dict[str, Any]) -> Entry:
    return Entry(
        experiment=fields.required_text(item, "experiment"),
        data=fields.mapping(item, "data"),
        schedules=[_schedule(s) for s in fields.items(item, "schedules")],
    )


def _schedule(item: dict[str, Any]) -> ScheduleChange:
    schedule_id = fields.text(item, "id", limit=64)
    delete = fields.boolean(item, "delete")
    change = ScheduleChange(
        id=schedule_id,
        name=fields.text(item, "name", limit=255),
        prompt=fields.text(item, "prompt"),
        due_at=fields.when(item, "date"),
        delete=delete,
    )
    if schedule_id is None and delete:
        raise fields.invalid("schedules", "'delete' needs the schedule's 'id'")
    if schedule_id is None and (change.prompt is None or change.due_at is None):
        raise fields.invalid("schedules", "a new schedule needs a 'prompt' and a 'date'")
    return change


async def _route(core: Core, platform: str | None, identifier: str, experiment: str) -> Route:
    """With ``platform``: its channel. Without: the one channel of the chatbot that knows the person."""
    if platform is not None:
        return route(core, platform, experiment)
    bots = bots_of(core, experiment)
    if not bots:
        return route(core, "", experiment)  # the unknown experiment's 404
    known = [
        c
        for c in core.channels.values()
        if c.bot in bots and await core.store.conversation(c.name, identifier) is not None
    ]
    if len(known) != 1:
        raise fields.invalid("platform", fields.REQUIRED)
    return route(core, known[0].name, experiment)


async def _into_session(target: Route, conversation: Conversation, merged: dict[str, Any]) -> None:
    """The person's data goes into their session's state too (when they have a session)."""
    if conversation.session_id is None:
        return
    try:
        await target.bot.update_session(conversation.session_id, state_change({}, merged, None))
    except SessionGone:
        return
    except BotError as exc:  # the data is kept with the person; the next trigger writes it again
        log.warning("participant data not written into the session state", reason=exc.reason)


def _page_size(value: str | None) -> int:
    if value is None:
        return PAGE_SIZE
    size = query_count(value, MAX_PAGE_SIZE)
    if size is None:
        raise fields.invalid("page_size", f"a number from 1 to {MAX_PAGE_SIZE}")
    return size


def _cursor(conversation_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{conversation_id}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        kind, number = "", ""
    if kind != "after" or not number.isdigit():
        raise BadRequest("Invalid cursor")
    return int(number)
