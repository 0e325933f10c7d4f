"""Bot backends: ``ocs`` (Open Chat Studio, through ``incoming_message`` or its Chat API), ``opencx``
and ``echo``."""

from __future__ import annotations

from bridge.bots.base import (
    AgentReplyDue,
    Bot,
    BotError,
    Closed,
    HandedOff,
    History,
    HistoryMessage,
    SessionEvent,
    SessionGone,
    SessionInfo,
    StateChange,
)
from bridge.bots.echo import EchoBot
from bridge.bots.ocs import OcsBot
from bridge.bots.ocs_chat import OcsChatBot
from bridge.bots.opencx import OpenCxBot
from bridge.settings import BotSettings


def build_bot(settings: BotSettings) -> Bot:
    if settings.backend == "ocs":
        return OcsChatBot(settings) if settings.transport == "chat" else OcsBot(settings)
    return OpenCxBot(settings) if settings.backend == "opencx" else EchoBot()


__all__ = [
    "AgentReplyDue",
    "Bot",
    "BotError",
    "Closed",
    "EchoBot",
    "HandedOff",
    "History",
    "HistoryMessage",
    "OcsBot",
    "OcsChatBot",
    "OpenCxBot",
    "SessionEvent",
    "SessionGone",
    "SessionInfo",
    "StateChange",
    "build_bot",
]
