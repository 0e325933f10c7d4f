"""The scheduler: at a schedule's date, its prompt goes into the person's conversation as a
``Kind.PROMPT`` row (the worker asks the bot in their session and delivers the answer). The row's
id names the schedule and its date, so several processes firing it store it once; a schedule
moved to another date fires again then."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from bridge.proactive.messages import enqueue, prompt
from bridge.store.people import due_schedules

if TYPE_CHECKING:
    from bridge.core import Core

log = structlog.get_logger("bridge.schedule")


async def fire_due(core: Core) -> int:
    """Store the prompt of every schedule whose date has come; how many were new."""
    fired = 0
    for conversation, schedule in await due_schedules(core.store):
        platform_id = f"schedule:{schedule.id}:{schedule.due_at.isoformat()}"
        accepted = await enqueue(
            core, prompt(conversation.channel, conversation.person, platform_id, schedule.prompt)
        )
        await core.store.mark_fired(schedule)
        if not accepted.duplicate:
            fired += 1
            log.info("schedule fired", schedule=schedule.id, message_id=accepted.public_id)
    return fired


async def run_schedules(core: Core) -> None:
    """Fire due schedules every worker poll interval."""
    while True:
        try:
            await fire_due(core)
        except Exception:
            log.exception("scheduler: firing schedules failed")
        await asyncio.sleep(core.settings.worker.poll_interval)
