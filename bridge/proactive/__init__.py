"""Proactive messages: the bridge writes first (trigger_bot, schedules, messages OCS created itself)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.core import Core


def loops() -> list[Callable[[Core], Awaitable[None]]]:
    """Long-running tasks of a process that runs workers: the scheduler and the history follower."""
    from bridge.proactive.follow import Follower
    from bridge.proactive.schedule import run_schedules

    return [run_schedules, lambda core: Follower(core).run()]
