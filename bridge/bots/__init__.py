"""Bot backends: ``ocs`` (Open Chat Studio) and ``echo``."""

from __future__ import annotations

from bridge.bots.base import Bot, BotError, History, HistoryMessage, SessionGone, SessionInfo, StateChange
from bridge.bots.echo import EchoBot
from bridge.bots.ocs import OcsBot
from bridge.settings import BotSettings


def build_bot(settings: BotSettings) -> Bot:
    return OcsBot(settings) if settings.backend == "ocs" else EchoBot()


__all__ = [
    "Bot",
    "BotError",
    "EchoBot",
    "History",
    "HistoryMessage",
    "OcsBot",
    "SessionGone",
    "SessionInfo",
    "StateChange",
    "build_bot",
]
